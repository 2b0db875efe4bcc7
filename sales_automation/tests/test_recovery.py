"""Errors are classed before they are retried: a lock wait timeout is transient and retried until the
step completes; a configuration gap fails the run at once, saying what to fix, with no retry."""

import frappe
from frappe.utils import add_to_date, now_datetime

from sales_automation import engine, errors
from sales_automation.tests import factories
from sales_automation.tests.base import AutomationTestCase
from sales_automation.tests.test_concurrency import second_connection, series_key


class TestErrorsAreClassedBeforeRetry(AutomationTestCase):
	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()

	def background_order(self, **rule_fields):
		customer = factories.make_customer()
		factories.make_rule(customer, execution_mode="Background", **rule_fields)
		item_code = factories.make_item(stock_qty=5)
		sales_order = factories.make_sales_order(
			[{"item_code": item_code, "qty": 1, "rate": 20}], customer=customer
		)
		return sales_order, factories.run_of(sales_order.name)

	def test_a_step_failing_for_a_configuration_gap_fails_the_run_at_once_without_retry(self):
		mode = factories.make_mode_of_payment("_SA Lost Account", self.env.cash_account)
		customer = factories.make_customer()
		factories.make_rule(customer, execution_mode="Background", mode_of_payment=mode)
		frappe.db.delete("Mode of Payment Account", {"parent": mode})  # the account goes missing later
		sales_order = factories.make_sales_order(
			[{"item_code": factories.make_item(stock_qty=5), "qty": 1, "rate": 20}], customer=customer
		)
		run = factories.run_of(sales_order.name)
		engine.process_run(run.name, drain_seconds=0)

		run.reload()
		self.assertEqual(run.status, "Failed")
		self.assertEqual(run.attempts, 1)
		self.assertFalse(run.next_retry_at)
		payment_step = next(row for row in run.steps if row.step == "Payment Entry")
		self.assertEqual(payment_step.status, "Failed")
		self.assertIn(payment_step.error_class, (errors.CONFIGURATION, errors.VALIDATION))
		self.assertIn("resume the run", run.error)
		docs = factories.documents_of(sales_order.name)
		self.assertEqual((len(docs["Delivery Note"]), len(docs["Sales Invoice"])), (1, 1))
		self.assertEqual(docs["Payment Entry"], [])
		self.assertTrue(
			frappe.db.exists(
				"Notification Log", {"document_type": "Sales Automation Run", "document_name": run.name}
			)
		)

		# the stuck-orders report says which class of error holds the order
		from sales_automation.sales_automation.report.orders_stuck_between_steps import (
			orders_stuck_between_steps as report,
		)

		frappe.db.set_single_value("Sales Automation Settings", "stuck_after_minutes", 0)
		try:
			rows = [row for row in report.rows(frappe._dict()) if row["sales_order"] == sales_order.name]
		finally:
			frappe.db.rollback()
		self.assertEqual(rows[0]["error_class"], payment_step.error_class)

	def test_a_step_meeting_a_lock_wait_timeout_is_retried_and_completes(self):
		sales_order, run = self.background_order()
		frappe.db.commit()
		invoice_series = series_key("Sales Invoice")
		holder = second_connection()  # another session keeps the invoice's naming row
		holder.cursor().execute("select current from `tabSeries` where name = %s for update", invoice_series)
		frappe.db.sql("set session innodb_lock_wait_timeout = 1")
		try:
			engine.process_run(run.name, drain_seconds=0)
		finally:
			frappe.db.sql("set session innodb_lock_wait_timeout = 50")
			holder.rollback()
			holder.close()

		run.reload()
		self.assertEqual(run.status, "Queued")  # to be retried with backoff
		self.assertTrue(run.next_retry_at)
		invoice_step = next(row for row in run.steps if row.step == "Sales Invoice")
		self.assertEqual((invoice_step.status, invoice_step.error_class), ("Failed", errors.TRANSIENT))

		frappe.db.set_value(
			"Sales Automation Run", run.name, "next_retry_at", add_to_date(now_datetime(), seconds=-1)
		)
		engine.process_run(run.name, drain_seconds=0)
		run.reload()
		self.assertEqual(run.status, "Completed")
		self.assertEqual(run.attempts, 2)
		docs = factories.documents_of(sales_order.name)
		self.assertEqual({doctype: len(names) for doctype, names in docs.items()}, dict.fromkeys(docs, 1))


class TestADeadlockRollsTheAttemptBackWhole(AutomationTestCase):
	def test_resume_meeting_a_deadlock_answers_busy_and_leaves_the_run_as_it_was(self):
		"""MariaDB answers a deadlock by rolling the whole transaction back, the step's savepoint with
		it: the step's failure cannot be rolled back to the savepoint nor recorded, and the caller gets
		the passing error (DatabaseBusyError, 503) instead of "SAVEPOINT does not exist" (500)."""
		from unittest.mock import patch

		from sales_automation.exceptions import DatabaseBusyError
		from sales_automation.steps import Cycle

		customer = factories.make_customer()
		factories.make_rule(customer, execution_mode="Background")
		sales_order = factories.make_sales_order(
			[{"item_code": factories.make_item(stock_qty=5), "qty": 1, "rate": 20}], customer=customer
		)
		run = factories.run_of(sales_order.name)
		frappe.db.commit()  # the run as a worker would find it

		def deadlocked(cycle):
			frappe.db.sql("rollback")  # what MariaDB does to the victim of a deadlock
			raise frappe.QueryDeadlockError("Deadlock found when trying to get lock")

		with patch.object(Cycle, "deliver", deadlocked), self.assertRaises(DatabaseBusyError):
			engine.resume(frappe.get_doc("Sales Automation Run", run.name))

		frappe.db.rollback()
		self.assertEqual(frappe.db.get_value("Sales Automation Run", run.name, "status"), "Queued")
		self.assertEqual(factories.documents_of(sales_order.name)["Delivery Note"], [])
		engine.resume(frappe.get_doc("Sales Automation Run", run.name))  # the next attempt completes
		self.assertEqual(frappe.db.get_value("Sales Automation Run", run.name, "status"), "Completed")

	def test_the_resume_endpoint_tries_a_deadlocked_attempt_again_and_completes_the_run(self):
		"""The resume endpoint (the desk's Retry / Resume and an integrator's call) retries an attempt
		MariaDB rolled back for a deadlock with another order's work, as every endpoint does; the fuzzer
		met one when two of its requests crossed (a 503 before)."""
		from unittest.mock import patch

		from sales_automation.api.runs import resume_run
		from sales_automation.steps import Cycle

		customer = factories.make_customer()
		factories.make_rule(customer, execution_mode="Background")
		sales_order = factories.make_sales_order(
			[{"item_code": factories.make_item(stock_qty=5), "qty": 1, "rate": 20}], customer=customer
		)
		run = factories.run_of(sales_order.name)
		frappe.db.commit()
		deliver, calls = Cycle.deliver, []

		def deadlocked_once(cycle):
			calls.append(1)
			if len(calls) == 1:
				frappe.db.sql("rollback")  # what MariaDB does to the victim of a deadlock
				raise frappe.QueryDeadlockError("Deadlock found when trying to get lock")
			return deliver(cycle)

		with patch.object(Cycle, "deliver", deadlocked_once):
			answer = resume_run(run.name)

		self.assertEqual(len(calls), 2)
		self.assertEqual(answer["status"], "Completed")
		self.assertEqual(frappe.db.get_value("Sales Automation Run", run.name, "status"), "Completed")
		docs = factories.documents_of(sales_order.name)
		self.assertEqual(len(docs["Delivery Note"]), 1)


class TestOneRunThatCannotBeQueuedHoldsNoOtherBack(AutomationTestCase):
	def tearDown(self):
		frappe.db.set_single_value("Sales Automation Settings", "bulk_queue", None)
		frappe.db.commit()  # the test committed the queue it set: later modules must not inherit it

	def test_the_scheduler_queues_the_other_due_runs_when_one_cannot_be_queued(self):
		from frappe.utils.background_jobs import get_job

		from sales_automation import background

		customer = factories.make_customer()
		factories.make_rule(customer, execution_mode="Background")
		orders = [
			factories.make_sales_order(
				[{"item_code": factories.make_item(stock_qty=5), "qty": 1, "rate": 20}], customer=customer
			)
			for _ in range(2)
		]
		runs = [factories.run_of(order.name) for order in orders]
		frappe.db.commit()  # their first jobs are queued now: dropped below, as if their attempts failed
		# the newer run goes on a queue this process does not know (as a worker started before the
		# queue was declared sees it); the older one on the Settings' queue
		frappe.db.set_value("Sales Automation Run", runs[1].name, "trigger", "Bulk")
		frappe.db.set_single_value("Sales Automation Settings", "bulk_queue", "sa_no_such_queue")
		past = add_to_date(now_datetime(), minutes=-1)
		for order, run in zip(orders, runs, strict=True):
			frappe.db.set_value("Sales Automation Run", run.name, "next_retry_at", past)
			background.drop_queued_job(order.name)
		errors_before = frappe.db.count("Error Log")
		frappe.db.commit()

		background.retry_due_runs()
		frappe.db.commit()  # enqueue_after_commit: the jobs go to the queue now

		self.assertIsNotNone(get_job(background.order_job_id(orders[0].name)))
		self.assertIsNone(get_job(background.order_job_id(orders[1].name)))
		self.assertEqual(frappe.db.count("Error Log"), errors_before + 1)
		background.drop_queued_job(orders[0].name)
