"""The run record: named from a series, ended in one place with its duration and the order's totals,
and listed with the columns a person scans the run list by."""

import frappe
from frappe.utils import get_datetime, nowdate, time_diff_in_seconds

from sales_automation import engine
from sales_automation.sales_automation.doctype.sales_automation_run.sales_automation_run import (
	LIST_VIEW_COLUMNS,
)
from sales_automation.tests import factories
from sales_automation.tests.base import AutomationTestCase


class TestRunRecord(AutomationTestCase):
	def completed_run(self, qty: float = 2, rate: float = 35):
		sales_order = factories.order_with_rule(qty, rate)  # Same Transaction
		return sales_order, factories.run_of(sales_order.name)

	def order_not_yet_run(self):
		"""A submitted order whose submit started no run, and a Background rule for its customer."""
		customer = factories.make_customer()
		rule = factories.make_rule(customer, execution_mode="Background")
		sales_order = factories.make_sales_order(
			[{"item_code": factories.make_item(stock_qty=1), "qty": 1, "rate": 10}],
			customer=customer,
			automate=False,
		)
		return sales_order, rule

	def test_a_new_run_is_named_from_the_yearly_series(self):
		_sales_order, run = self.completed_run()
		self.assertRegex(run.name, rf"^SA-RUN-{nowdate()[:4]}-\d{{5}}$")
		self.assertEqual(frappe.get_meta("Sales Automation Run").autoname, "SA-RUN-.YYYY.-.#####")

	def test_a_run_named_by_hash_before_the_series_is_still_read_and_cancelled_with_its_order(self):
		sales_order, rule = self.order_not_yet_run()
		run = engine.create_run(sales_order, rule, "test", "Manual", "Same Transaction")
		old_name = frappe.generate_hash(length=10)
		run.insert(set_name=old_name, ignore_permissions=True)

		sales_order.cancel()  # the order's hook cancels its queued runs

		run = frappe.get_doc("Sales Automation Run", old_name)
		self.assertEqual(run.status, "Cancelled")
		self.assertTrue(run.finished_at)
		self.assertIsNone(run.duration)  # it never started

	def test_a_queued_run_shows_its_orders_currency_not_the_users_default(self):
		sales_order, rule = self.order_not_yet_run()
		other = "EUR" if sales_order.currency != "EUR" else "USD"
		frappe.defaults.set_user_default("currency", other)
		self.addCleanup(frappe.defaults.clear_user_default, "currency")

		run = engine.create_run(sales_order, rule, "test", "Manual", "Background")  # saved Queued

		self.assertEqual(frappe.db.get_value(run.doctype, run.name, "currency"), sales_order.currency)

	def test_a_completed_run_records_its_duration_and_the_order_totals_when_it_ends(self):
		sales_order, run = self.completed_run(qty=2, rate=35)

		self.assertEqual(run.status, "Completed")
		self.assertTrue(run.started_at and run.finished_at)
		self.assertEqual(
			run.duration, time_diff_in_seconds(get_datetime(run.finished_at), get_datetime(run.started_at))
		)
		self.assertGreaterEqual(run.duration, 0)
		self.assertEqual(
			(run.currency, run.grand_total, run.invoiced_amount, run.paid_amount, run.outstanding_amount),
			(sales_order.currency, 70, 70, 70, 0),
		)
		self.assertEqual(frappe.db.get_value("Sales Invoice", run.sales_invoice, "grand_total"), 70)

	def test_a_run_cancelled_after_it_ended_keeps_its_duration_and_reports_the_totals_left(self):
		sales_order, run = self.completed_run(qty=1, rate=40)
		finished_at, duration = run.finished_at, run.duration

		engine.cancel_cycle(sales_order.name)

		run.reload()
		self.assertEqual(run.status, "Cancelled")
		self.assertEqual((run.finished_at, run.duration), (finished_at, duration))
		self.assertEqual(
			(run.grand_total, run.invoiced_amount, run.paid_amount, run.outstanding_amount), (40, 0, 0, 40)
		)
		# the documents it made stay linked, cancelled
		self.assertEqual(frappe.db.get_value("Sales Invoice", run.sales_invoice, "docstatus"), 2)

	def test_a_partially_completed_run_records_what_it_left_open_with_its_totals(self):
		sales_order = factories.order_with_rule(3, 10, stock=1, shortage_policy="Deliver Available")
		run = factories.run_of(sales_order.name)

		self.assertEqual(run.status, "Partially Completed")
		self.assertTrue(run.left_open)
		self.assertIsNotNone(run.duration)
		self.assertEqual((run.grand_total, run.invoiced_amount), (30, 10))
		self.assertEqual((run.paid_amount, run.outstanding_amount), (10, 20))

	def test_the_run_list_shows_customer_rule_trigger_status_started_and_duration(self):
		meta = frappe.get_meta("Sales Automation Run")
		in_list_view = [field.fieldname for field in meta.fields if field.in_list_view]
		self.assertEqual(
			set(in_list_view),
			{"sales_order", "status", "customer", "rule", "trigger", "started_at", "duration"},
		)
		self.assertEqual(meta.get_field("duration").fieldtype, "Duration")
		self.assertEqual(meta.title_field, "sales_order")
		# title, tags and the status indicator, then every in_list_view field but those two
		self.assertEqual(LIST_VIEW_COLUMNS, 3 + len(in_list_view) - 2)
		self.assertEqual(
			frappe.db.get_value("List View Settings", "Sales Automation Run", "total_fields"),
			str(LIST_VIEW_COLUMNS),
		)
