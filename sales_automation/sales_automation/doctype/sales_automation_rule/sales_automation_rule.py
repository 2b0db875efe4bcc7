import json

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import flt, fmt_money
from frappe.utils.data import evaluate_filters, get_filter

from sales_automation.exceptions import InvalidRuleError
from sales_automation.notifications import warn_if_invoices_cannot_be_emailed
from sales_automation.payment_accounts import account_refusal
from sales_automation.references import pattern_error

# rule field -> Sales Order field. Every Link condition carries an "order_" prefix: Frappe fills a new
# document's Link fields from the user's defaults by fieldname (company, currency, customer_group,
# territory...), which would silently narrow a new rule. The desk also fills them by the linked
# DocType, whatever the fieldname: sales_automation_rule_list.js stops that.
CONDITION_FIELDS = {
	"order_company": "company",
	"order_customer": "customer",
	"order_customer_group": "customer_group",
	"order_territory": "territory",
	"order_type": "order_type",
	"order_currency": "currency",
	"order_payment_terms_template": "payment_terms_template",
}

# condition fields' names before the "order_" prefix, as older scripts still send them. Frappe keeps a key
# that is not a field as an attribute of the document and saves nothing of it: dropped, the condition
# would leave a rule that takes every order.
RENAMED_FIELDS = {
	"company": "order_company",
	"customer": "order_customer",
	"payment_terms_template": "order_payment_terms_template",
}


class SalesAutomationRule(Document):
	def before_validate(self):
		self.take_renamed_fields()

	def validate(self):
		self.validate_filters()
		self.validate_totals()
		self.validate_actions()
		self.validate_mode_of_payment()
		self.validate_bank_account()
		warn_if_invoices_cannot_be_emailed(self)

	def refuse(self, fieldname: str, message: str):
		label = _(self.meta.get_label(fieldname))
		frappe.throw(
			_("{0}: {1}").format(frappe.bold(label), message),
			exc=InvalidRuleError,
			title=_("Invalid Sales Automation Rule"),
		)

	def take_renamed_fields(self):
		"""A condition sent by its old name goes to its field; both names with different values are refused."""
		for old_fieldname, fieldname in RENAMED_FIELDS.items():
			value = self.get(old_fieldname)
			if value in (None, ""):
				continue
			if self.get(fieldname) in (None, "", value):
				self.set(fieldname, value)
				continue
			self.refuse(
				fieldname,
				_("is {0}, but {1} (its old name) says {2}: send {3} only").format(
					self.get(fieldname), frappe.bold(old_fieldname), value, frappe.bold(fieldname)
				),
			)

	def validate_filters(self):
		if not (self.order_filters or "").strip():
			self.order_filters = None
			return
		try:
			filters = json.loads(self.order_filters)
		except ValueError:
			self.refuse(
				"order_filters", _("must be valid JSON, e.g. {0}").format('[["po_no", "like", "WEB-%"]]')
			)
		if not isinstance(filters, list | dict):
			self.refuse("order_filters", _("must be a list of filters or a dict of field: value"))
		meta = frappe.get_meta("Sales Order")
		rows = filters.items() if isinstance(filters, dict) else filters
		for row in rows:
			fieldname = row[0] if isinstance(row, tuple | list) and row else None
			if isinstance(row, list) and len(row) == 4:
				fieldname = row[1]
			if not fieldname or not (meta.has_field(fieldname) or fieldname in ("name", "docstatus")):
				self.refuse(
					"order_filters", _("{0} is not a field of Sales Order").format(frappe.bold(fieldname))
				)

	def validate_totals(self):
		if flt(self.min_grand_total) < 0:
			self.refuse("min_grand_total", _("cannot be negative"))
		if flt(self.max_grand_total) < 0:
			self.refuse("max_grand_total", _("cannot be negative"))
		if flt(self.max_grand_total) and flt(self.min_grand_total) > flt(self.max_grand_total):
			self.refuse("min_grand_total", _("cannot be greater than Max Grand Total"))

	def validate_actions(self):
		if not (self.create_delivery_note or self.create_sales_invoice or self.create_payment_entry):
			self.refuse("create_delivery_note", _("the rule creates nothing: enable at least one document"))
		if self.create_sales_invoice:
			if self.invoice_source == "Delivery Note" and not self.create_delivery_note:
				self.refuse(
					"invoice_source",
					_("an invoice from the Delivery Note needs Create Delivery Note"),
				)
			if self.invoice_source == "Delivery Note" and not self.submit_delivery_note:
				self.refuse(
					"invoice_source",
					_(
						"an invoice from the Delivery Note needs Submit Delivery Note (drafts cannot be invoiced)"
					),
				)
			if self.invoice_source == "Sales Order (Update Stock)" and self.create_delivery_note:
				self.refuse(
					"invoice_source",
					_(
						"an invoice that updates stock cannot be combined with Create Delivery Note (stock would move twice)"
					),
				)
		if self.email_invoice and not (self.create_sales_invoice and self.submit_sales_invoice):
			self.refuse("email_invoice", _("only a submitted Sales Invoice can be e-mailed"))
		if self.create_payment_entry and self.payment_against == "Sales Invoice":
			if not self.create_sales_invoice:
				self.refuse(
					"payment_against", _("a payment against the Sales Invoice needs Create Sales Invoice")
				)
			if not self.submit_sales_invoice:
				self.refuse(
					"submit_payment_entry" if self.submit_payment_entry else "payment_against",
					_(
						"a payment against the Sales Invoice needs Submit Sales Invoice (drafts cannot be paid)"
					),
				)
		if self.create_payment_entry and self.payment_against == "Sales Order (Advance)":
			if self.create_sales_invoice and self.submit_sales_invoice and not self.submit_payment_entry:
				self.refuse(
					"submit_payment_entry",
					_("a draft advance cannot be allocated by the submitted invoice; submit the payment"),
				)
		if self.create_payment_entry and self.reference_no_pattern:
			error = pattern_error(self.reference_no_pattern)
			if error:
				self.refuse("reference_no_pattern", error)

	def validate_mode_of_payment(self):
		if not (self.create_payment_entry and self.mode_of_payment and self.order_company):
			return
		if not frappe.db.get_value(
			"Mode of Payment Account",
			{"parent": self.mode_of_payment, "company": self.order_company},
			"default_account",
		):
			self.refuse(
				"mode_of_payment",
				_("{0} has no default account for company {1}").format(
					self.mode_of_payment, self.order_company
				),
			)

	def validate_bank_account(self):
		if not self.bank_account:
			return
		if not self.order_company:
			self.refuse(
				"bank_account",
				_("an account belongs to one company: set the rule's {0} too").format(
					frappe.bold(_(self.meta.get_label("order_company")))
				),
			)
		refusal = account_refusal(self.bank_account, self.order_company)
		if refusal:
			self.refuse("bank_account", refusal)

	def match(self, sales_order) -> str | None:
		"""Why this rule applies to `sales_order`, or None when it does not."""
		return self.evaluate(sales_order)[0]

	def evaluate(self, sales_order) -> tuple[str | None, str | None]:
		"""(why this rule applies to `sales_order`, None), or (None, the first condition the order fails,
		named: "Currency is EUR, the rule wants USD")."""
		reasons = []
		for fieldname, order_fieldname in CONDITION_FIELDS.items():
			expected = self.get(fieldname)
			if not expected:
				continue
			actual = sales_order.get(order_fieldname)
			if actual != expected:
				return None, self.unmet(_(self.meta.get_label(fieldname)), actual, expected)
			reasons.append(f"{order_fieldname} = {expected}")
		grand_total = flt(sales_order.grand_total)
		minimum, maximum = flt(self.min_grand_total), flt(self.max_grand_total)
		if minimum and grand_total < minimum:
			return None, self.unmet(
				_("Grand Total"),
				money(grand_total, sales_order),
				_("at least {0}").format(money(minimum, sales_order)),
			)
		if maximum and grand_total > maximum:
			return None, self.unmet(
				_("Grand Total"),
				money(grand_total, sales_order),
				_("at most {0}").format(money(maximum, sales_order)),
			)
		if minimum or maximum:
			reasons.append(f"grand_total {grand_total} in [{minimum}, {maximum or '∞'}]")
		if self.order_filters:
			# frappe's compare() cannot take None (e.g. "like" on an empty PO number)
			values = frappe._dict(
				{key: "" if value is None else value for key, value in sales_order.as_dict().items()}
			)
			failed = next(
				(row for row in filter_rows(self.order_filters) if not evaluate_filters(values, row)), None
			)
			if failed:
				condition = get_filter(None, failed[0] if isinstance(failed, list) else failed)
				return None, self.unmet(
					condition.fieldname,
					values.get(condition.fieldname),
					f"{condition.fieldname} {condition.operator} {condition.value}",
				)
			reasons.append(f"filters {self.order_filters}")
		reason = _("Rule {0} (priority {1}) matched: {2}").format(
			self.name, self.priority, ", ".join(reasons) or _("no conditions")
		)
		return reason, None

	@staticmethod
	def unmet(label: str, actual, wanted) -> str:
		return _("{0} is {1}, the rule wants {2}").format(
			label, _("empty") if actual in (None, "") else actual, wanted
		)


def filter_rows(order_filters: str) -> list:
	"""The rule's Additional Filters one by one, each as evaluate_filters takes it (all must hold)."""
	filters = json.loads(order_filters)
	if isinstance(filters, dict):
		return [{key: value} for key, value in filters.items()]
	return [[row] for row in filters]


def money(amount: float, sales_order) -> str:
	return fmt_money(amount, currency=sales_order.get("currency"))
