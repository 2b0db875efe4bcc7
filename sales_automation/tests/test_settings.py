"""Configuration that is real: log retention, the drain and the wait for a busy order come from
Sales Automation Settings, and the scheduler's and the claim's queries have their indexes."""

import time

import frappe
from frappe.core.doctype.log_settings.log_settings import _supports_log_clearing
from frappe.utils import add_days, now_datetime

from sales_automation import engine, locks
from sales_automation.api import deliver
from sales_automation.exceptions import OrderBusyError
from sales_automation.settings import SETTINGS_THE_CYCLE_READS, prefetch_cycle_settings, value_fields
from sales_automation.tests.base import IntegrationTestCase
from sales_automation.tests.factories import (
	add_custom_field,
	make_customer,
	make_item,
	make_rule,
	make_sales_order,
	run_of,
	statements_of,
)
from sales_automation.tests.test_concurrency import second_connection


class TestSettings(IntegrationTestCase):
	def tearDown(self):
		frappe.db.set_single_value(
			"Sales Automation Settings",
			{
				"log_retention_days": 90,
				"drain_seconds": 20,
				"order_lock_wait_seconds": 20,
				"queue": "default",
				"bulk_queue": None,
			},
		)
		frappe.db.commit()

	def background_run(self, status: str, days_ago: int) -> str:
		customer = make_customer()
		make_rule(customer, execution_mode="Background")
		sales_order = make_sales_order(
			[{"item_code": make_item(stock_qty=2), "qty": 1, "rate": 5}], customer=customer
		)
		run_name = run_of(sales_order.name).name
		when = add_days(now_datetime(), -days_ago)
		frappe.db.set_value(
			"Sales Automation Run", run_name, {"status": status, "modified": when}, update_modified=False
		)
		return run_name

	def test_finished_runs_older_than_the_settings_retention_go_with_their_steps_and_others_stay(self):
		frappe.db.set_single_value("Sales Automation Settings", "log_retention_days", 10)
		old_completed = self.background_run("Completed", 20)
		old_failed = self.background_run("Failed", 20)
		recent_completed = self.background_run("Completed", 5)
		self.assertTrue(_supports_log_clearing("Sales Automation Run"))

		# what Log Settings calls daily, with its own (hooks') 90 days: the setting wins
		frappe.get_attr(
			"sales_automation.sales_automation.doctype.sales_automation_run.sales_automation_run.SalesAutomationRun"
		).clear_old_logs(days=90)

		self.assertFalse(frappe.db.exists("Sales Automation Run", old_completed))
		self.assertFalse(frappe.db.exists("Sales Automation Run Step", {"parent": old_completed}))
		self.assertTrue(frappe.db.exists("Sales Automation Run", old_failed))
		self.assertTrue(frappe.db.exists("Sales Automation Run", recent_completed))

	def test_idempotency_keys_older_than_log_settings_days_are_cleared(self):
		self.assertTrue(_supports_log_clearing("Sales Automation Request"))
		record = frappe.get_doc(
			{
				"doctype": "Sales Automation Request",
				"request_id": frappe.generate_hash(length=20),
				"user": "Administrator",
				"idempotency_key": "old-key",
				"endpoint": "run_sales_cycle",
				"request_hash": "x",
				"status": "Completed",
			}
		).insert(ignore_permissions=True)
		frappe.db.set_value(
			"Sales Automation Request",
			record.name,
			"modified",
			add_days(now_datetime(), -40),
			update_modified=False,
		)
		frappe.get_attr(
			"sales_automation.sales_automation.doctype.sales_automation_request.sales_automation_request.SalesAutomationRequest"
		).clear_old_logs(days=30)
		self.assertFalse(frappe.db.exists("Sales Automation Request", record.name))

	def test_the_wait_for_a_busy_order_is_the_settings(self):
		sales_order = make_sales_order(
			[{"item_code": make_item(stock_qty=2), "qty": 1, "rate": 5}], automate=False
		)
		frappe.db.set_single_value("Sales Automation Settings", "order_lock_wait_seconds", 1)
		frappe.db.commit()
		holder = second_connection()  # another actor keeps the order
		holder.cursor().execute("select get_lock(%s, 0)", locks.lock_name(sales_order.name))
		try:
			started = time.monotonic()
			with self.assertRaises(OrderBusyError):
				deliver(sales_order=sales_order.name)
			self.assertLess(time.monotonic() - started, 10)  # not the default 20 s
		finally:
			holder.close()

	def test_a_job_drains_further_runs_only_as_long_as_the_settings_say(self):
		frappe.db.set_single_value("Sales Automation Settings", "drain_seconds", 0)
		first = self.background_run("Queued", 0)
		second = self.background_run("Queued", 0)
		frappe.db.commit()
		engine.process_run(first)  # no drain: the second run waits for its own job
		self.assertEqual(frappe.db.get_value("Sales Automation Run", second, "status"), "Queued")
		self.assertNotEqual(frappe.db.get_value("Sales Automation Run", first, "status"), "Queued")

	def test_the_scheduler_and_claim_queries_have_their_indexes(self):
		indexes = {
			row[0]: row[1]
			for row in frappe.db.sql(
				"""select index_name, group_concat(column_name order by seq_in_index)
				from information_schema.statistics
				where table_schema = database() and table_name = 'tabSales Automation Run'
				group by index_name"""
			)
		}
		self.assertIn("status,next_retry_at", indexes.values())
		self.assertIn("sales_order,status", indexes.values())


class TestQueueSetting(IntegrationTestCase):
	def tearDown(self):
		frappe.db.set_single_value("Sales Automation Settings", {"queue": "default", "bulk_queue": None})
		frappe.db.commit()

	def test_runs_go_on_the_settings_queue_and_bulk_runs_on_the_bulk_queue(self):
		from frappe.utils.background_jobs import get_job

		from sales_automation.background import order_job_id, queue_of

		settings = frappe.get_single("Sales Automation Settings")
		settings.queue, settings.bulk_queue = "long", "short"
		settings.save()
		self.assertEqual((queue_of("Submit"), queue_of("API"), queue_of("Bulk")), ("long", "long", "short"))
		customer = make_customer()
		make_rule(customer, execution_mode="Background")
		sales_order = make_sales_order(
			[{"item_code": make_item(stock_qty=2), "qty": 1, "rate": 5}], customer=customer
		)
		frappe.db.commit()  # the job is queued after commit
		job = get_job(order_job_id(sales_order.name))
		try:
			self.assertTrue(job.origin.endswith(":long"), job.origin)
		finally:
			job.delete()  # no worker of the tests listens on "long"
			frappe.db.set_value("Sales Automation Run", run_of(sales_order.name).name, "status", "Cancelled")
			frappe.db.commit()

	def test_an_unknown_queue_is_refused_naming_the_field(self):
		settings = frappe.get_single("Sales Automation Settings")
		settings.bulk_queue = "backfill"
		with self.assertRaisesRegex(frappe.ValidationError, "Bulk Queue.*backfill is not a queue"):
			settings.save()


class TestCycleSettings(IntegrationTestCase):
	"""ERPNext's Settings that the cycle's documents read, fetched in one statement."""

	def test_their_field_types_are_kept_until_the_metadata_changes(self):
		def metadata_loaded(doctype):
			return any(
				frappe.safe_decode(name).endswith("doctype_meta") and doctype in values
				for name, values in frappe.local.cache.items()
			)

		value_fields("Selling Settings")
		frappe.local.cache = {}  # as a new request starts
		self.assertNotIn("sa_test_flag", value_fields("Selling Settings"))
		self.assertFalse(metadata_loaded("Selling Settings"))

		custom_field = add_custom_field(self, "Selling Settings", "sa_test_flag", "Check", "so_required")
		self.assertEqual(value_fields("Selling Settings")["sa_test_flag"], "Check")

		custom_field.delete()
		self.assertNotIn("sa_test_flag", value_fields("Selling Settings"))

	def test_the_cycle_settings_fetched_at_once_are_what_frappe_reads_field_by_field(self):
		for doctype, fieldname, value in (
			("Stock Settings", "allow_negative_stock", 1),
			("Selling Settings", "so_required", "Yes"),
		):
			was = frappe.db.get_single_value(doctype, fieldname, cache=False)
			self.addCleanup(frappe.db.set_single_value, doctype, fieldname, was)
			frappe.db.set_single_value(doctype, fieldname, value)
		for doctype in SETTINGS_THE_CYCLE_READS:
			value_fields(doctype)  # their DocTypes' meta loaded, as the cycle's documents load it
			frappe.db.value_cache.pop(doctype, None)  # as on a new connection

		self.assertEqual(statements_of(prefetch_cycle_settings), 1)

		for doctype in SETTINGS_THE_CYCLE_READS:
			fetched = frappe.db.value_cache[doctype]
			self.assertEqual(set(fetched), set(value_fields(doctype)))
			for fieldname, value in fetched.items():
				read = frappe.db.get_single_value(doctype, fieldname, cache=False)
				self.assertEqual((fieldname, value, type(value)), (fieldname, read, type(read)))
		self.assertEqual(frappe.db.value_cache["Stock Settings"]["allow_negative_stock"], 1)

		self.assertEqual(statements_of(prefetch_cycle_settings), 0)  # all cached: nothing to read
		self.assertEqual(
			statements_of(lambda: frappe.db.get_single_value("Selling Settings", "so_required")), 0
		)

		# a change drops the fetched values as it drops Frappe's own
		frappe.db.set_single_value("Stock Settings", "allow_negative_stock", 0)
		self.assertEqual(frappe.db.get_single_value("Stock Settings", "allow_negative_stock"), 0)
		prefetch_cycle_settings()
		self.assertEqual(frappe.db.value_cache["Stock Settings"]["allow_negative_stock"], 0)
