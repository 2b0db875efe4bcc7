import frappe

from sales_automation.exceptions import InvalidRuleError
from sales_automation.sales_automation.doctype.sales_automation_rule.sales_automation_rule import (
	CONDITION_FIELDS,
)
from sales_automation.setup.demo import ensure_api_user, leaf_record
from sales_automation.tests.base import IntegrationTestCase
from sales_automation.tests.factories import make_customer, make_mode_of_payment, make_rule, test_env
from sales_automation.tests.setups import ensure_half_and_half_terms

INVALID_RULES = [
	({"create_delivery_note": 0, "invoice_source": "Delivery Note"}, "Invoice From"),
	({"submit_delivery_note": 0, "invoice_source": "Delivery Note"}, "Invoice From"),
	({"invoice_source": "Sales Order (Update Stock)"}, "Invoice From"),
	({"create_sales_invoice": 0}, "Payment Against"),
	({"submit_sales_invoice": 0}, "Submit Payment Entry"),
	(
		{"create_delivery_note": 0, "create_sales_invoice": 0, "create_payment_entry": 0},
		"Create Delivery Note",
	),
	(
		{"email_invoice": 1, "submit_sales_invoice": 0, "create_payment_entry": 0},
		"E-mail Invoice To Customer",
	),
	({"min_grand_total": 500, "max_grand_total": 100}, "Min Grand Total"),
	({"order_filters": "[[not json"}, "Additional Filters"),
	({"order_filters": '[["no_such_field", "=", 1]]'}, "Additional Filters"),
	({"reference_no_pattern": "{order_id}"}, "Reference No Pattern"),
	({"reference_no_pattern": "{sales_order.__class__}"}, "Reference No Pattern"),
	({"reference_no_pattern": "{sales_order:>99999}"}, "Reference No Pattern"),
	({"reference_no_pattern": "{0}"}, "Reference No Pattern"),
	({"reference_no_pattern": "{"}, "Reference No Pattern"),
	({"reference_no_pattern": "}{"}, "Reference No Pattern"),
	(
		{"payment_against": "Sales Order (Advance)", "submit_payment_entry": 0},
		"Submit Payment Entry",
	),
]


class TestSalesAutomationRule(IntegrationTestCase):
	def test_invalid_combinations_are_refused_naming_the_field(self):
		customer = make_customer()
		for fields, label in INVALID_RULES:
			with self.subTest(fields=fields):
				with self.assertRaises(InvalidRuleError) as caught:
					make_rule(customer, **fields)
				self.assertIn(label, str(caught.exception))
				self.assertFalse(frappe.db.exists("Sales Automation Rule", {"order_customer": customer}))

	def test_mode_of_payment_without_account_for_the_company_is_refused(self):
		env = test_env()
		mode_name = make_mode_of_payment("_SA No Account")
		with self.assertRaises(InvalidRuleError) as caught:
			make_rule(make_customer(), mode_of_payment=mode_name)
		self.assertIn("Mode of Payment", str(caught.exception))
		self.assertIn(env.company, str(caught.exception))

	def test_valid_rule_is_saved(self):
		rule = make_rule(make_customer(), order_filters='[["po_no", "like", "WEB-%"]]')
		self.assertTrue(frappe.db.exists("Sales Automation Rule", rule.name))

	def test_a_new_rule_has_no_condition_prefilled_from_user_defaults(self):
		env = test_env()
		user = "_sa_rule_defaults@example.com"
		ensure_api_user(user, ["Sales Manager"])
		# a default for every condition, by the names Frappe looks defaults up by (the linked DocType's)
		defaults = {
			"company": env.company,
			"currency": "EUR",
			"customer": env.customer,
			"customer_group": leaf_record("Customer Group"),
			"territory": leaf_record("Territory"),
			"payment_terms_template": ensure_half_and_half_terms(),
		}
		for key, value in defaults.items():
			frappe.defaults.set_user_default(key, value, user)
		frappe.set_user(user)
		try:
			self.assertEqual(frappe.defaults.get_user_default("company"), env.company)
			self.assertEqual(frappe.defaults.get_user_default("currency"), "EUR")
			rule = frappe.new_doc("Sales Automation Rule")
		finally:
			frappe.set_user("Administrator")
		for fieldname in CONDITION_FIELDS:
			self.assertFalse(rule.get(fieldname), fieldname)
		self.assertTrue(rule.create_delivery_note)  # the DocType's own defaults still apply

	def test_a_condition_the_order_fails_is_named_with_both_values(self):
		rule = make_rule(make_customer(), order_currency="USD", enabled=0)
		sales_order = frappe._dict(
			company=rule.order_company, customer=rule.order_customer, currency="EUR", grand_total=10
		)
		self.assertEqual(rule.evaluate(sales_order), (None, "Currency is EUR, the rule wants USD"))
		self.assertIsNone(rule.match(sales_order))
		sales_order.currency = "USD"
		reason, unmet = rule.evaluate(sales_order)
		self.assertIsNone(unmet)
		self.assertEqual(rule.match(sales_order), reason)
		self.assertIn("currency = USD", reason)
