"""The app's Scheduled Job Types stay due whatever the site's time zone history (issue 26)."""

import frappe
from frappe.utils import add_to_date, now_datetime

from sales_automation.health import SAFETY_NET, scheduler_health
from sales_automation.setup.scheduler import app_job_methods, repair_job_schedules
from sales_automation.tests.base import IntegrationTestCase


def safety_net():
	return frappe.get_doc("Scheduled Job Type", {"method": SAFETY_NET})


def move_to_the_future(hours: float = 5.5, last_execution: bool = True):
	"""The job as a time zone hours behind the one it was made on leaves it."""
	job = safety_net()
	future = add_to_date(now_datetime(), hours=hours)
	frappe.db.set_value(
		"Scheduled Job Type",
		job.name,
		{"creation": future, "last_execution": future if last_execution else None},
		update_modified=False,
	)
	job = safety_net()
	assert not job.is_event_due(), "the job should be held"
	return job


def set_time_zone(time_zone: str | None):
	frappe.db.set_single_value("System Settings", "time_zone", time_zone)
	frappe.clear_document_cache("System Settings", "System Settings")


def keep_schedule(test):
	"""The app's job's creation and last run put back when `test` ends."""
	job = safety_net()
	test.addCleanup(
		frappe.db.set_value,
		"Scheduled Job Type",
		job.name,
		{"creation": job.creation, "last_execution": job.last_execution},
		update_modified=False,
	)


class TestSchedulerRepair(IntegrationTestCase):
	def setUp(self):
		keep_schedule(self)

	def test_a_job_whose_last_run_is_in_the_future_is_due_after_the_repair(self):
		move_to_the_future()
		self.assertEqual(repair_job_schedules(), [safety_net().name])
		job = safety_net()
		self.assertTrue(job.is_event_due())
		self.assertLessEqual(job.get_next_execution(), now_datetime())

	def test_a_job_created_in_the_future_that_never_ran_is_due_after_the_repair(self):
		move_to_the_future(last_execution=False)
		repair_job_schedules()
		self.assertTrue(safety_net().is_event_due())

	def test_after_migrate_and_after_install_repair_the_schedule(self):
		for hook in ("after_migrate", "after_install"):
			with self.subTest(hook=hook):
				move_to_the_future()
				for method in frappe.get_hooks(hook, app_name="sales_automation"):
					frappe.get_attr(method)()
				self.assertTrue(safety_net().is_event_due())

	def test_a_change_of_time_zone_to_one_behind_leaves_the_jobs_due(self):
		self.addCleanup(set_time_zone, frappe.db.get_single_value("System Settings", "time_zone"))
		frappe_job = frappe.get_doc("Scheduled Job Type", {"method": app_job_methods("frappe")[0]})
		self.addCleanup(
			frappe.db.set_value,
			"Scheduled Job Type",
			frappe_job.name,
			"last_execution",
			frappe_job.last_execution,
			update_modified=False,
		)
		set_time_zone("Asia/Kolkata")
		for job_name in (safety_net().name, frappe_job.name):
			frappe.db.set_value(
				"Scheduled Job Type", job_name, "last_execution", now_datetime(), update_modified=False
			)
		system_settings = frappe.get_doc("System Settings")
		system_settings.time_zone = "America/New_York"
		system_settings.save()
		self.assertEqual(frappe.get_system_settings("time_zone"), "America/New_York")
		self.assertTrue(safety_net().is_event_due())
		frappe_job.reload()
		# another app's job at its next time after now, as Frappe starts a new one
		self.assertLessEqual(frappe_job.last_execution, now_datetime())
		self.assertGreater(frappe_job.last_execution, add_to_date(now_datetime(), minutes=-1))

	def test_a_job_that_ran_in_the_past_is_left_as_it_is(self):
		last_run = add_to_date(now_datetime(), seconds=-10)
		frappe.db.set_value(
			"Scheduled Job Type", safety_net().name, "last_execution", last_run, update_modified=False
		)
		self.assertEqual(repair_job_schedules(), [])
		self.assertEqual(safety_net().last_execution, last_run)


class TestSchedulerHealth(IntegrationTestCase):
	def setUp(self):
		keep_schedule(self)
		enabled = frappe.db.get_single_value("System Settings", "enable_scheduler")
		self.addCleanup(frappe.db.set_single_value, "System Settings", "enable_scheduler", enabled)
		frappe.db.set_single_value("System Settings", "enable_scheduler", 1)
		self.addCleanup(setattr, frappe.local.conf, "pause_scheduler", frappe.local.conf.pause_scheduler)
		frappe.local.conf.pause_scheduler = 0
		self.addCleanup(setattr, frappe.conf, "disable_scheduler", frappe.conf.disable_scheduler)
		frappe.conf.disable_scheduler = 0

	def ran(self, seconds_ago: float):
		last_run = add_to_date(now_datetime(), seconds=-seconds_ago)
		frappe.db.set_value(
			"Scheduled Job Type", safety_net().name, "last_execution", last_run, update_modified=False
		)
		return last_run

	def test_a_job_that_ran_within_its_interval_is_healthy(self):
		last_run = self.ran(30)
		self.assertEqual(scheduler_health(), {"ok": True, "reason": None, "last_run": last_run})

	def test_a_disabled_scheduler_is_reported(self):
		self.ran(30)
		frappe.db.set_single_value("System Settings", "enable_scheduler", 0)
		health = scheduler_health()
		self.assertFalse(health["ok"])
		self.assertIn("disabled", health["reason"])

	def test_a_paused_scheduler_is_reported(self):
		self.ran(30)
		frappe.local.conf.pause_scheduler = 1
		health = scheduler_health()
		self.assertFalse(health["ok"])
		self.assertIn("paused", health["reason"])

	def test_a_job_that_has_not_run_for_longer_than_its_interval_is_reported(self):
		last_run = self.ran(15 * 60)
		health = scheduler_health()
		self.assertFalse(health["ok"])
		self.assertIn("has not run since", health["reason"])
		self.assertEqual(health["last_run"], last_run)

	def test_a_job_held_in_the_future_is_reported(self):
		move_to_the_future()
		health = scheduler_health()
		self.assertFalse(health["ok"])
		self.assertIn("held until", health["reason"])

	def test_a_user_who_cannot_read_runs_is_refused(self):
		frappe.set_user("Guest")
		self.addCleanup(frappe.set_user, "Administrator")
		with self.assertRaises(frappe.PermissionError):
			scheduler_health()
