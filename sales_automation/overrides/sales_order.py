import frappe

from sales_automation import engine


def on_submit(doc, method=None):
	if frappe.flags.in_import or frappe.flags.in_migrate or doc.flags.skip_sales_automation:
		return
	engine.start_for_order(doc, trigger="Submit")


def on_cancel(doc, method=None):
	engine.cancel_runs_of_order(doc.name)
