"""Bulk runs: many submitted orders through the background queue, each once, failures isolated."""

import frappe

from sales_automation import engine
from sales_automation.api.runs import bulk_status, run_bulk
from sales_automation.setup.demo import ensure_api_user
from sales_automation.tests.base import IntegrationTestCase
from sales_automation.tests.factories import (
	documents_of,
	make_customer,
	make_item,
	make_rule,
	make_sales_order,
	run_of,
	test_env,
)


class TestBulkRun(IntegrationTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		test_env()

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.set_single_value("Sales Automation Settings", "max_attempts", 3)

	def test_each_order_runs_once_and_a_failing_order_does_not_stop_the_others(self):
		frappe.db.set_single_value("Sales Automation Settings", "max_attempts", 1)
		rule = make_rule(make_customer(), execution_mode="Background")
		customer = make_customer()  # no rule matches this customer's orders on submit
		item_code = make_item(stock_qty=10)
		first, second = (
			make_sales_order([{"item_code": item_code, "qty": 1, "rate": 20}], customer=customer)
			for _ in range(2)
		)
		short = make_sales_order(
			[{"item_code": make_item(stock_qty=0), "qty": 1, "rate": 20}], customer=customer
		)
		draft = make_sales_order(
			[{"item_code": item_code, "qty": 1, "rate": 20}], customer=customer, submit=False
		)
		self.assertIsNone(run_of(first.name))

		answer = run_bulk(sales_orders=[first.name, second.name, short.name, draft.name], rule=rule.name)

		self.assertEqual(len(answer["runs"]), 3)
		self.assertEqual(answer["skipped"], [{"sales_order": draft.name, "reason": "it is not submitted"}])
		self.assertEqual(frappe.db.get_value("Sales Automation Run", answer["runs"][0], "trigger"), "Bulk")
		self.assertFalse(bulk_status(answer["runs"])["finished"])

		engine.process_run(answer["runs"][0], drain_seconds=120)  # one job drains the others

		status = bulk_status(answer["runs"])
		self.assertTrue(status["finished"])
		self.assertEqual(status["by_status"], {"Completed": 2, "Failed": 1})
		self.assertEqual([row["sales_order"] for row in status["failed"]], [short.name])
		self.assertIn("Not enough stock", status["failed"][0]["error"])
		for sales_order in (first, second):
			docs = documents_of(sales_order.name)
			self.assertEqual([len(docs[d]) for d in docs], [1, 1, 1])
			self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "status"), "Completed")
		self.assertEqual(documents_of(short.name)["Delivery Note"], [])

		again = run_bulk(sales_orders=[first.name, second.name], rule=rule.name)
		self.assertEqual(again["runs"], [])
		self.assertEqual({row["reason"] for row in again["skipped"]}, {"it is Completed"})

	def test_bulk_by_filters_and_restricted_to_managers(self):
		rule = make_rule(make_customer(), execution_mode="Background")
		customer = make_customer()
		item_code = make_item(stock_qty=5)
		orders = [
			make_sales_order([{"item_code": item_code, "qty": 1, "rate": 5}], customer=customer)
			for _ in range(2)
		]
		answer = run_bulk(filters={"customer": customer, "docstatus": 1}, rule=rule.name)
		self.assertEqual(
			sorted(frappe.db.get_value("Sales Automation Run", run, "sales_order") for run in answer["runs"]),
			sorted(order.name for order in orders),
		)
		ensure_api_user("_sa_bulk_clerk@example.com", ["Sales User"])
		frappe.set_user("_sa_bulk_clerk@example.com")
		with self.assertRaises(frappe.PermissionError):
			run_bulk(sales_orders=[orders[0].name])

	def test_an_order_no_rule_matches_gets_the_one_calls_default_plan(self):
		customer = make_customer()  # no rule matches this customer's orders
		order = make_sales_order(
			[{"item_code": make_item(stock_qty=5), "qty": 1, "rate": 30}], customer=customer
		)
		self.assertIsNone(run_of(order.name))

		answer = run_bulk(sales_orders=[order.name])

		self.assertEqual(answer["skipped"], [])
		run = frappe.get_doc("Sales Automation Run", answer["runs"][0])
		self.assertIsNone(run.rule)
		self.assertIn("default applies", run.match_reason)
		self.assertEqual([row.step for row in run.steps], ["Delivery Note", "Sales Invoice", "Payment Entry"])
		engine.process_run(run.name, drain_seconds=0)
		docs = documents_of(order.name)
		self.assertEqual([len(docs[d]) for d in docs], [1, 1, 1])
		self.assertEqual(frappe.db.get_value("Sales Order", order.name, "status"), "Completed")
