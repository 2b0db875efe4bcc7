"""The rule simulator (simulator.py): a rule, as saved or as on its form, tried on recent orders and
previewed on one; nothing saved; permissions."""

import frappe
from frappe.utils import add_days, flt, nowdate

from sales_automation import locks
from sales_automation.exceptions import InvalidRequestError, InvalidRuleError
from sales_automation.setup.demo import ensure_api_user
from sales_automation.simulator import preview_order, simulate_rule
from sales_automation.tests.base import EndpointTestCase
from sales_automation.tests.factories import (
	count_documents,
	make_customer,
	make_item,
	make_rule,
	make_sales_order,
)

RULE = "Sales Automation Rule"


def saved_everything() -> dict:
	"""What a dry run must leave as it found: the cycle's tables, runs and idempotency records."""
	return {
		**count_documents(),
		"Sales Automation Run": frappe.db.count("Sales Automation Run"),
		"Sales Automation Request": frappe.db.count("Sales Automation Request"),
	}


def as_on_form(rule, **changes) -> dict:
	"""The rule as the desk's form sends it: the saved fields with unsaved changes on top."""
	return {**rule.as_dict(convert_dates_to_str=True), **changes}


class SimulatorTestCase(EndpointTestCase):
	"""A preview rolls back its transaction, as the endpoints do."""

	def order(self, customer: str, rate: float = 50, stock_qty: float = 0, **fields):
		"""A submitted order of one line, as orders from before the app: no run, no documents."""
		return make_sales_order(
			[{"item_code": make_item(stock_qty=stock_qty), "qty": 1, "rate": rate}],
			customer=customer,
			automate=False,
			**fields,
		)

	def listed(self, rule, customer: str, **kwargs) -> dict:
		"""The simulator's verdicts on the customer's orders, by order name."""
		result = simulate_rule(rule, filters={"customer": customer}, **kwargs)
		return {row["name"]: row for row in result["orders"]}


class TestSimulateRule(SimulatorTestCase):
	def test_a_matching_order_would_run_with_the_reason(self):
		customer = make_customer()
		rule = make_rule(customer)
		sales_order = self.order(customer)

		row = self.listed(rule.name, customer)[sales_order.name]

		self.assertTrue(row["matches"])
		self.assertTrue(row["would_run"])
		self.assertIn(f"customer = {customer}", row["reason"])
		self.assertIsNone(row["unmet_condition"])
		self.assertIsNone(row["shadowed_by"])
		self.assertEqual(row["winner"], rule.name)

	def test_a_non_matching_order_names_the_failed_condition(self):
		customer = make_customer()
		rule = make_rule(customer, order_currency="EUR")
		sales_order = self.order(customer)  # in the company's USD

		row = self.listed(rule.name, customer)[sales_order.name]

		self.assertFalse(row["matches"])
		self.assertFalse(row["would_run"])
		self.assertIsNone(row["reason"])
		self.assertEqual(row["unmet_condition"], "Currency is USD, the rule wants EUR")

	def test_the_failed_total_and_additional_filter_are_named(self):
		customer = make_customer()
		sales_order = self.order(customer, rate=50, po_no="SHOP-7")
		for fields, unmet in (
			({"min_grand_total": 100}, "Grand Total is $ 50.00, the rule wants at least $ 100.00"),
			({"max_grand_total": 20}, "Grand Total is $ 50.00, the rule wants at most $ 20.00"),
			(
				{"order_filters": '[["po_no", "like", "WEB-%"]]'},
				"po_no is SHOP-7, the rule wants po_no like WEB-%",
			),
		):
			with self.subTest(fields=fields):
				rule = make_rule(customer, enabled=0, **fields)
				row = self.listed(rule.name, customer)[sales_order.name]
				self.assertEqual(row["unmet_condition"], unmet)

	def test_an_order_taken_by_a_rule_of_higher_priority_is_shadowed(self):
		customer = make_customer()
		higher = make_rule(customer, priority=200)
		lower = make_rule(customer, priority=100)
		sales_order = self.order(customer)

		row = self.listed(lower.name, customer)[sales_order.name]

		self.assertTrue(row["matches"])
		self.assertFalse(row["would_run"])
		self.assertEqual(row["shadowed_by"], higher.name)
		self.assertIn(higher.name, row["winner_reason"])

	def test_the_rule_is_tried_as_on_its_form_and_not_saved(self):
		customer = make_customer()
		higher = make_rule(customer, priority=200)
		lower = make_rule(customer, priority=100)
		sales_order = self.order(customer)

		row = self.listed(as_on_form(lower, priority=300), customer)[sales_order.name]

		self.assertTrue(row["would_run"])
		self.assertIsNone(row["shadowed_by"])
		self.assertEqual(frappe.db.get_value(RULE, lower.name, "priority"), 100)
		self.assertEqual(frappe.db.get_value(RULE, higher.name, "priority"), 200)

	def test_a_new_unsaved_rule_is_tried_and_not_saved(self):
		customer = make_customer()
		sales_order = self.order(customer)
		rules_before = frappe.db.count(RULE)
		new_rule = {
			"doctype": RULE,
			"name": "new-sales-automation-rule-1",
			"__islocal": 1,
			"rule_name": f"_SA Unsaved {frappe.generate_hash(length=6)}",
			"enabled": 1,
			"priority": 10**6,
			"order_customer": customer,
			"create_delivery_note": 1,
			"submit_delivery_note": 1,
			"create_sales_invoice": 1,
			"invoice_source": "Delivery Note",
			"submit_sales_invoice": 1,
		}

		row = self.listed(frappe.as_json(new_rule), customer)[sales_order.name]

		self.assertTrue(row["would_run"])
		self.assertEqual(row["winner"], new_rule["rule_name"])
		self.assertEqual(frappe.db.count(RULE), rules_before)

	def test_a_rule_that_would_not_save_is_refused_naming_the_field(self):
		rule = make_rule(make_customer())
		with self.assertRaises(InvalidRuleError) as caught:
			simulate_rule(
				as_on_form(rule, create_delivery_note=0, create_sales_invoice=0, create_payment_entry=0)
			)
		self.assertIn("Create Delivery Note", str(caught.exception))

	def test_a_rule_field_that_is_not_a_single_value_is_refused_naming_it(self):
		rule = make_rule(make_customer())
		with self.assertRaises(InvalidRequestError) as caught:
			simulate_rule(as_on_form(rule, order_filters=[["po_no", "like", "WEB-%"]]))
		self.assertEqual(caught.exception.field, "rule.order_filters")

	def test_unknown_filters_and_limits_are_refused(self):
		rule = make_rule(make_customer())
		for kwargs, field in (
			({"filters": {"territory": "All"}}, "filters.territory"),
			({"filters": {"from_date": "yesterday-ish"}}, "filters.from_date"),
			({"limit": 0}, "limit"),
			({"limit": 1000}, "limit"),
		):
			with self.subTest(kwargs=kwargs):
				with self.assertRaises(InvalidRequestError) as caught:
					simulate_rule(rule.name, **kwargs)
				self.assertEqual(caught.exception.field, field)

	def test_the_limit_and_company_and_dates_narrow_the_list(self):
		customer = make_customer()
		rule = make_rule(customer)
		first = self.order(customer, transaction_date=add_days(nowdate(), -3))
		second = self.order(customer, transaction_date=add_days(nowdate(), -1))

		self.assertEqual(list(self.listed(rule.name, customer, limit=1)), [second.name])
		result = simulate_rule(
			rule.name,
			filters={"customer": customer, "company": self.env.company, "to_date": add_days(nowdate(), -2)},
		)
		self.assertEqual([row["name"] for row in result["orders"]], [first.name])
		result = simulate_rule(rule.name, filters={"customer": customer, "company": "_SA No Such Company"})
		self.assertEqual(result["orders"], [])


class TestPreviewOrder(SimulatorTestCase):
	def stocked_order_under_a_rule(self):
		"""A rule of a new customer's, an order of theirs with stock to deliver, and the counts of all
		a preview could save."""
		customer = make_customer()
		rule = make_rule(customer)
		sales_order = self.order(customer, rate=40, stock_qty=5)
		frappe.db.commit()
		return rule, sales_order, saved_everything()

	def test_the_preview_shows_the_cycle_and_saves_nothing(self):
		rule, sales_order, before = self.stocked_order_under_a_rule()

		preview = preview_order(rule.name, sales_order.name)

		self.assertEqual(saved_everything(), before)
		self.assertTrue(preview["would_succeed"], preview["errors"])
		self.assertTrue(preview["verdict"]["would_run"])
		self.assertEqual(
			[d["doctype"] for d in preview["documents"]], ["Delivery Note", "Sales Invoice", "Payment Entry"]
		)
		self.assertEqual(preview["documents"][1]["grand_total"], 40)
		self.assertEqual(preview["documents"][2]["paid_to"], self.env.cash_account)
		debit = sum(flt(row["debit"]) for row in preview["gl_entries"])
		self.assertGreater(debit, 0)
		self.assertEqual(debit, sum(flt(row["credit"]) for row in preview["gl_entries"]))
		self.assertTrue(any(row["actual_qty"] == -1 for row in preview["stock_ledger_entries"]))
		self.assertEqual(
			frappe.db.get_value("Sales Order", sales_order.name, ["per_delivered", "per_billed"]), (0, 0)
		)
		self.assertFalse(frappe.db.exists("Sales Automation Run", {"sales_order": sales_order.name}))
		self.assertNotIn(sales_order.name, locks.held())  # released with the rollback
		self.assertFalse(locks.is_held_elsewhere(sales_order.name))

	def test_the_preview_follows_the_rule_as_on_its_form(self):
		rule, sales_order, before = self.stocked_order_under_a_rule()

		preview = preview_order(as_on_form(rule, create_payment_entry=0), sales_order.name)

		self.assertEqual([d["doctype"] for d in preview["documents"]], ["Delivery Note", "Sales Invoice"])
		self.assertEqual(saved_everything(), before)
		self.assertEqual(frappe.db.get_value(RULE, rule.name, "create_payment_entry"), 1)

	def test_the_preview_of_a_non_matching_order_says_so_and_reports_the_error_a_step_would_hit(self):
		customer = make_customer()
		rule = make_rule(customer, order_currency="EUR")
		sales_order = self.order(customer, stock_qty=0)  # nothing to deliver from
		frappe.db.commit()
		before = saved_everything()

		preview = preview_order(rule.name, sales_order.name)

		self.assertEqual(saved_everything(), before)
		self.assertFalse(preview["verdict"]["matches"])
		self.assertIn("Currency is USD, the rule wants EUR", preview["match_reason"])
		self.assertFalse(preview["would_succeed"])
		self.assertEqual(preview["errors"][0]["step"], "delivery_note")


class TestSimulatorPermissions(SimulatorTestCase):
	def test_a_user_who_may_not_read_rules_is_refused(self):
		user = "_sa_sim_no_rules@example.com"
		ensure_api_user(user, ["Stock User"])
		customer = make_customer()
		rule = make_rule(customer)
		sales_order = self.order(customer, stock_qty=5)
		frappe.db.commit()
		before = saved_everything()

		frappe.set_user(user)
		with self.assertRaises(frappe.PermissionError):
			simulate_rule(rule.name)
		with self.assertRaises(frappe.PermissionError):
			simulate_rule(as_on_form(rule))
		with self.assertRaises(frappe.PermissionError):
			preview_order(rule.name, sales_order.name)
		frappe.set_user("Administrator")
		self.assertEqual(saved_everything(), before)

	def test_only_orders_the_user_may_read_are_listed(self):
		user = "_sa_sim_one_customer@example.com"
		ensure_api_user(user, ["Sales User"])
		permitted, other = make_customer(), make_customer()
		rule = make_rule(permitted)
		permitted_order = self.order(permitted)
		other_order = self.order(other)
		frappe.get_doc(
			{"doctype": "User Permission", "user": user, "allow": "Customer", "for_value": permitted}
		).insert()

		frappe.set_user(user)
		listed = simulate_rule(rule.name, limit=100)["orders"]
		self.assertIn(permitted_order.name, [row["name"] for row in listed])
		self.assertEqual({row["customer"] for row in listed}, {permitted})
		self.assertEqual(simulate_rule(rule.name, filters={"customer": other})["orders"], [])
		frappe.set_user("Administrator")
		self.assertEqual(
			[row["name"] for row in simulate_rule(rule.name, filters={"customer": other})["orders"]],
			[other_order.name],
		)
