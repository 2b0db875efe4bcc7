"""Sales Automation Rule's company, customer and payment_terms_template conditions are order_company,
order_customer and order_payment_terms_template: Frappe filled them in a new rule from the user's
defaults by fieldname, so a rule saved as it opened matched only the user's company."""

import frappe
from frappe.model.utils.rename_field import rename_field

RENAMED = {
	"company": "order_company",
	"customer": "order_customer",
	"payment_terms_template": "order_payment_terms_template",
}


def execute():
	for old_fieldname, new_fieldname in RENAMED.items():
		# a site installed after the rename never had the old column: rename_field says so and returns
		if frappe.db.has_column("Sales Automation Rule", old_fieldname):
			rename_field("Sales Automation Rule", old_fieldname, new_fieldname)
