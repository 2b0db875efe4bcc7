import frappe

from sales_automation.exceptions import InvalidRuleError
from sales_automation.sales_automation.doctype.sales_automation_rule.sales_automation_rule import (
	CONDITION_FIELDS,
	RENAMED_FIELDS,
)
from sales_automation.setup.demo import ensure_api_user, leaf_record
from sales_automation.tests.base import IntegrationTestCase
from sales_automation.tests.factories import (
	make_customer,
	make_item,
	make_mode_of_payment,
	make_rule,
	make_sales_order,
	run_of,
	serve_site,
	test_env,
)
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

RULE_THAT_DELIVERS = {
	"execution_mode": "Same Transaction",
	"create_delivery_note": 1,
	"submit_delivery_note": 1,
	"create_sales_invoice": 0,
	"create_payment_entry": 0,
}


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

	def test_conditions_sent_by_their_old_names_are_saved_in_their_fields(self):
		env = test_env()
		customer = make_customer()
		terms = ensure_half_and_half_terms()
		rule = delivery_rule(company=env.company, customer=customer, payment_terms_template=terms).insert()
		rule.reload()
		self.assertEqual(
			(rule.order_company, rule.order_customer, rule.order_payment_terms_template),
			(env.company, customer, terms),
		)

	def test_an_old_name_that_contradicts_its_field_is_refused_naming_the_field(self):
		customer, other_customer = make_customer(), make_customer()
		with self.assertRaises(InvalidRuleError) as caught:
			delivery_rule(order_customer=customer, customer=other_customer).insert()
		self.assertIn("Customer", str(caught.exception))
		self.assertIn("order_customer", str(caught.exception))
		self.assertFalse(frappe.db.exists("Sales Automation Rule", {"order_customer": customer}))
		# the same value under both names is no contradiction
		delivery_rule(order_customer=customer, customer=customer).insert()


def delivery_rule(**fields):
	"""A disabled rule that only delivers, with `fields` as a script would send them."""
	return frappe.get_doc(
		{
			"doctype": "Sales Automation Rule",
			**RULE_THAT_DELIVERS,
			"rule_name": f"_SA Old Names {frappe.generate_hash(length=8)}",
			"enabled": 0,
			**fields,
		}
	)


class TestOldConditionNamesOverREST(IntegrationTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.env = test_env()
		cls.customer, cls.other_customer = make_customer(), make_customer()
		cls.item_code = make_item(stock_qty=10)
		cls.server, cls.http = serve_site(cls, "_sa_rule_rest@example.com")

	def test_a_rule_posted_with_the_old_names_takes_no_order_of_another_customer(self):
		old_names = {"customer": self.customer, "company": self.env.company}
		self.assertEqual(set(old_names) - set(RENAMED_FIELDS), set())
		response = self.http.post(
			self.server.url + "/api/resource/Sales Automation Rule",
			json={
				**RULE_THAT_DELIVERS,
				"rule_name": f"_SA Old Names {frappe.generate_hash(length=8)}",
				"enabled": 1,
				"priority": 10000,  # tried before every other rule of the test site
				**old_names,
			},
			timeout=120,
		)
		self.assertEqual(response.status_code, 200, response.text)
		rule_name = response.json()["data"]["name"]
		frappe.db.rollback()  # a fresh snapshot: see what the server committed
		self.addCleanup(frappe.db.commit)  # nosemgrep - the server's rule is committed; so is its removal
		self.addCleanup(frappe.delete_doc, "Sales Automation Rule", rule_name, force=True)
		self.assertEqual(
			frappe.db.get_value("Sales Automation Rule", rule_name, ["order_customer", "order_company"]),
			(self.customer, self.env.company),
		)
		sales_order = make_sales_order(
			[{"item_code": self.item_code, "qty": 1, "rate": 10}], customer=self.other_customer
		)
		run = run_of(sales_order.name)
		self.assertNotEqual(run and run.rule, rule_name)
		rule = frappe.get_doc("Sales Automation Rule", rule_name)
		self.assertIsNone(rule.match(sales_order))
		sales_order.customer = self.customer
		self.assertIsNotNone(rule.match(sales_order))
