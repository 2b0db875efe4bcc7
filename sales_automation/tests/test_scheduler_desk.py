"""The desk says when the safety net does not run (issue 26): the order's bar (order_automation) and the
workspace's warning block (health.safety_net_status, setup/workspace.py)."""

import json

import frappe
from frappe.utils import add_to_date, get_datetime, now_datetime

from sales_automation.api import desk
from sales_automation.health import SAFETY_NET, safety_net_status
from sales_automation.run_log import create_run, save_run
from sales_automation.setup.workspace import SAFETY_NET_BLOCK, SOURCE
from sales_automation.tests.base import AutomationTestCase
from sales_automation.tests.factories import make_customer, make_item, make_rule, make_sales_order, run_of


def queued_order(retry_minutes_ago: float, stock_qty: float = 0):
	"""A submitted order whose background run failed its delivery and waits for its retry, due that long
	ago: recorded as the engine records it, with no job queued (only the scheduler would retry it)."""
	customer = make_customer()
	rule = make_rule(customer, execution_mode="Background")
	sales_order = make_sales_order(
		[{"item_code": make_item(stock_qty=stock_qty), "qty": 1, "rate": 10}],
		customer=customer,
		automate=False,
	)
	run = create_run(sales_order, rule, "the test's rule", trigger="Submit", execution_mode="Background")
	run.steps[0].status = "Failed"
	run.steps[0].message = "Not enough stock"
	run.error = f"{run.steps[0].step}: Not enough stock"
	run.attempts = 1
	run.next_retry_at = add_to_date(now_datetime(), minutes=-retry_minutes_ago)
	save_run(run)
	return sales_order, run.name, run.next_retry_at


class SchedulerTestCase(AutomationTestCase):
	"""The scheduler on and its retry job just run, restored after each test."""

	def setUp(self):
		job_name = frappe.db.get_value("Scheduled Job Type", {"method": SAFETY_NET})
		last_execution = frappe.db.get_value("Scheduled Job Type", job_name, "last_execution")
		self.addCleanup(
			frappe.db.set_value,
			"Scheduled Job Type",
			job_name,
			"last_execution",
			last_execution,
			update_modified=False,
		)
		frappe.db.set_value(
			"Scheduled Job Type",
			job_name,
			"last_execution",
			add_to_date(now_datetime(), seconds=-20),
			update_modified=False,
		)
		enabled = frappe.db.get_single_value("System Settings", "enable_scheduler")
		self.addCleanup(frappe.db.set_single_value, "System Settings", "enable_scheduler", enabled)
		frappe.db.set_single_value("System Settings", "enable_scheduler", 1)
		for conf in (frappe.local.conf, frappe.conf):
			for key in ("pause_scheduler", "disable_scheduler", "maintenance_mode"):
				self.addCleanup(setattr, conf, key, conf.get(key))
				conf[key] = 0

	def disable_scheduler(self):
		frappe.db.set_single_value("System Settings", "enable_scheduler", 0)


class TestOrderBar(SchedulerTestCase):
	def test_an_overdue_retry_and_a_disabled_scheduler_are_reported(self):
		sales_order, run_name, next_retry_at = queued_order(retry_minutes_ago=15)
		self.disable_scheduler()

		state = desk.order_automation(sales_order.name)

		self.assertEqual(state["run"]["name"], run_name)
		self.assertEqual(state["run"]["status"], "Queued")
		self.assertTrue(state["run"]["retry_overdue"])
		self.assertEqual(get_datetime(state["run"]["next_retry_at"]), next_retry_at)
		self.assertFalse(state["scheduler"]["ok"])
		self.assertIn("disabled", state["scheduler"]["reason"])
		self.assertIn(f"bench --site {frappe.local.site} enable-scheduler", state["scheduler"]["reason"])

	def test_a_retry_due_within_the_schedulers_look_is_not_overdue_and_a_running_scheduler_is_ok(self):
		sales_order, _run_name, _next_retry_at = queued_order(retry_minutes_ago=0.5)

		state = desk.order_automation(sales_order.name)

		self.assertFalse(state["run"]["retry_overdue"])
		self.assertEqual(
			state["scheduler"], {"ok": True, "reason": None, "last_run": state["scheduler"]["last_run"]}
		)

	def test_an_overdue_retry_is_reported_with_the_scheduler_running(self):
		sales_order, _run_name, _next_retry_at = queued_order(retry_minutes_ago=15)

		state = desk.order_automation(sales_order.name)

		self.assertTrue(state["run"]["retry_overdue"])
		self.assertTrue(state["scheduler"]["ok"])

	def test_a_completed_run_is_never_overdue(self):
		customer = make_customer()
		make_rule(customer)
		sales_order = make_sales_order(
			[{"item_code": make_item(stock_qty=1), "qty": 1, "rate": 10}], customer=customer
		)
		frappe.db.set_value(
			"Sales Automation Run",
			run_of(sales_order.name).name,
			"next_retry_at",
			add_to_date(now_datetime(), minutes=-15),
		)

		state = desk.order_automation(sales_order.name)

		self.assertEqual(state["run"]["status"], "Completed")
		self.assertFalse(state["run"]["retry_overdue"])


class TestWorkspaceWarning(SchedulerTestCase):
	def test_the_overdue_runs_and_the_disabled_scheduler_are_counted(self):
		before = safety_net_status()
		self.assertTrue(before["scheduler"]["ok"], before["scheduler"]["reason"])
		_sales_order, _run_name, next_retry_at = queued_order(retry_minutes_ago=15)
		queued_order(retry_minutes_ago=0.5)  # on time
		self.disable_scheduler()

		status = safety_net_status()

		self.assertEqual(status["overdue_runs"], before["overdue_runs"] + 1)
		self.assertLessEqual(status["overdue_since"], next_retry_at)
		self.assertFalse(status["scheduler"]["ok"])
		self.assertIn("disabled", status["scheduler"]["reason"])

	def test_a_user_who_cannot_read_runs_is_refused(self):
		frappe.set_user("Guest")
		self.addCleanup(frappe.set_user, "Administrator")
		with self.assertRaises(frappe.PermissionError):
			safety_net_status()

	def test_the_workspace_shows_the_block_the_app_ships(self):
		block = frappe.get_doc("Custom HTML Block", SAFETY_NET_BLOCK)
		self.assertEqual(block.script, (SOURCE / "block.js").read_text())
		self.assertFalse(block.private)
		self.assertFalse(block.roles)
		workspace = frappe.get_doc("Workspace", "Sales Automation")
		# the desk finds a block of the content by its row's label
		self.assertEqual(
			[(row.custom_block_name, row.label) for row in workspace.custom_blocks],
			[(SAFETY_NET_BLOCK, SAFETY_NET_BLOCK)],
		)
		first = json.loads(workspace.content)[0]
		self.assertEqual(
			(first["type"], first["data"]["custom_block_name"]), ("custom_block", SAFETY_NET_BLOCK)
		)

	def test_migrate_brings_a_changed_block_back_to_what_the_app_ships(self):
		frappe.db.set_value("Custom HTML Block", SAFETY_NET_BLOCK, "script", "// changed on the site")
		for method in frappe.get_hooks("after_migrate", app_name="sales_automation"):
			frappe.get_attr(method)()
		self.assertEqual(
			frappe.db.get_value("Custom HTML Block", SAFETY_NET_BLOCK, "script"),
			(SOURCE / "block.js").read_text(),
		)
