"""Dead workers' runs run again, for real: a real RQ worker is killed whole (SIGKILL, its work horse with
it) between two steps of a run; then only a fresh worker and Frappe's own scheduler process run, and no
one resumes anything. The run completes within two scheduler ticks with one Delivery Note, Sales Invoice
and Payment Entry, and the Webhooks docs/events.md sets up are each received once: for a rule's run on
submit, and for the asynchronous one call over HTTP.

A run's first job goes on a queue only this site uses (site config `workers`, Settings: Queue), so that
the worker killed is the one that took it, not another worker of the shared bench. The scheduler queues
its jobs, the app's retry job among them, on the queue their Scheduled Job Type names (`default`), where
any worker of the bench may take them; so after the kill the site's runs go on `default` too, which the
fresh worker listens to."""

import os
import signal
import subprocess
import sys
import time
from datetime import datetime

import psutil
from rq.job import JobStatus

import frappe
from frappe.installer import update_site_config
from frappe.utils import add_to_date, cint, get_datetime, now_datetime
from frappe.utils.background_jobs import get_job, get_queues_timeout
from frappe.utils.scheduler import (
	_get_scheduler_lock_file,
	get_scheduler_tick,
	is_schduler_process_running,
	toggle_scheduler,
)

from sales_automation import background, locks
from sales_automation.live_server import LiveServer
from sales_automation.setup.scheduler import repair_job_schedules
from sales_automation.tests import factories
from sales_automation.tests.test_concurrency import ConcurrencyTestCase, second_connection, series_key
from sales_automation.tests.test_events import ORDER_COMPLETED, RUN_ENDED, Receiver, register_webhook

OWN_QUEUE = "sa_test_own"
BENCH_QUEUE = "default"
RETRY_JOB = "sales_automation.background.retry_due_runs"
# What a worker needs once a tick has queued the retry job, on a busy two-core machine: fork and run it,
# then fork and run the rest of the run (two steps) and the Webhooks' jobs.
AFTER_THE_TICK_SECONDS = 60


def own_queue(test) -> str:
	"""A queue of this site's own for the test's runs (Settings: Queue), undone when the test ends.

	Only processes started for this site know it: a `bench worker` reads the bench's config alone, and
	Frappe keeps the queues a process knows from its first look (get_queues_timeout is cached)."""
	workers = dict(frappe.conf.get("workers") or {})

	def declare(queues: dict):
		update_site_config("workers", queues or "None")
		frappe.local.conf.workers = queues
		get_queues_timeout.cache_clear()

	declare({**workers, OWN_QUEUE: {"timeout": 300}})
	previous = frappe.db.get_single_value("Sales Automation Settings", "queue")
	set_queue(OWN_QUEUE)

	def undo():
		set_queue(previous)
		declare(workers)

	test.addCleanup(undo)
	return OWN_QUEUE


def set_queue(queue: str | None):
	frappe.db.set_single_value("Sales Automation Settings", "queue", queue)
	frappe.db.commit()


def bench_process(test, args: list[str], name: str) -> subprocess.Popen:
	"""A process of this bench started from its sites directory, as production starts it: without the
	test runner's CI variable, which would make a worker run its jobs as tests (Webhooks sent inside the
	job instead of queued). Its output goes to the site's logs; it is stopped when the test ends."""
	sites_path = os.path.abspath(frappe.local.sites_path)
	log_path = os.path.join(sites_path, frappe.local.site, "logs", f"{name}-{os.getpid()}.log")
	os.makedirs(os.path.dirname(log_path), exist_ok=True)
	with open(log_path, "ab") as log:
		process = subprocess.Popen(
			args,
			cwd=sites_path,
			stdout=log,
			stderr=subprocess.STDOUT,
			env={key: value for key, value in os.environ.items() if key != "CI"},
		)
	process.log_path = log_path
	test.addCleanup(stop, process)
	return process


def stop(process: subprocess.Popen, grace: float = 60):
	"""End a process started here, and its children: SIGTERM first (an RQ worker finishes the job in
	hand, which may be another site's), SIGKILL when that takes longer than `grace` seconds."""
	if process.poll() is not None:
		return
	try:
		children = psutil.Process(process.pid).children(recursive=True)
	except psutil.NoSuchProcess:
		children = []
	process.terminate()
	try:
		process.wait(timeout=grace)
	except subprocess.TimeoutExpired:
		process.kill()
		process.wait(timeout=30)
	for child in children:
		try:
			child.kill()  # psutil checks it is still the same process
		except psutil.NoSuchProcess:
			pass


def start_worker(test, queues: list[str], name: str, burst: bool = False) -> subprocess.Popen:
	"""A real RQ worker of this bench for `queues`. It is started for this site, whose config declares
	the site's own queue (`bench worker` reads the bench's config only); it runs any site's jobs."""
	code = (
		"import frappe; from frappe.utils.background_jobs import start_worker; "
		f"frappe.init(site={frappe.local.site!r}, sites_path='.'); "
		f"start_worker(queue={','.join(dict.fromkeys(queues))!r}, burst={burst!r})"
	)
	return bench_process(test, [sys.executable, "-c", code], name)


def start_scheduler(test) -> subprocess.Popen:
	"""Frappe's scheduler process, as scripts/dev.sh (and `bench start`) runs it.

	There is one per bench (a file lock): when another one ticks already, the dev servers' say, it
	does the same for this site and ours exits."""
	process = bench_process(
		test, [sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "schedule"], "scheduler"
	)
	lock_file = _get_scheduler_lock_file()
	deadline = time.monotonic() + 60
	while process.poll() is None and time.monotonic() < deadline:
		try:
			if any(f.path == lock_file for f in psutil.Process(process.pid).open_files()):
				return process  # it holds the lock: it ticks from now on
		except psutil.NoSuchProcess:
			break
		time.sleep(0.2)
	test.assertIsNotNone(process.poll(), f"the scheduler did not start in 60 s, see {process.log_path}")
	test.assertTrue(
		is_schduler_process_running(), f"the scheduler exited and none runs, see {process.log_path}"
	)
	print("another scheduler process of the bench ticks for this site")
	return process


def schedule_the_apps_job_alone(test):
	"""The site's scheduler on, with the app's retry job due and the only one it runs; all put back when
	the test ends. The site's other jobs (ERPNext's hourly and daily ones, due since the site was last
	scheduled) would otherwise be queued by the same tick, ahead of it on the one worker.

	Returns the retry job's Scheduled Job Type."""
	was_enabled = cint(frappe.db.get_single_value("System Settings", "enable_scheduler"))
	Job = frappe.qb.DocType("Scheduled Job Type")
	others = (
		frappe.qb.from_(Job)
		.select(Job.name)
		.where((Job.stopped == 0) & (Job.method != RETRY_JOB))
		.run(pluck=True)
	)

	def stop_others(stopped: int):
		if others:
			frappe.qb.update(Job).set(Job.stopped, stopped).where(Job.name.isin(others)).run()

	def undo():
		stop_others(0)
		toggle_scheduler(was_enabled)
		frappe.db.commit()

	test.addCleanup(undo)
	stop_others(1)
	toggle_scheduler(True)
	repair_job_schedules()  # a last run in the future (another time zone's) would hold it back
	frappe.db.commit()

	job = frappe.get_doc("Scheduled Job Type", {"method": RETRY_JOB})
	test.assertFalse(job.stopped)
	test.assertLessEqual(job.get_next_execution(), add_to_date(now_datetime(), seconds=get_scheduler_tick()))
	return job


class DeadWorkerTestCase(ConcurrencyTestCase):
	def kill_its_worker_between_two_steps(self, run_name: str, sales_order_name: str):
		"""A real worker of the site's own queue takes the run; once its delivery step is done, with its
		invoice step under way, the worker and its work horse are killed (SIGKILL: nobody tells RQ)."""
		invoice_series = series_key("Sales Invoice")
		holder = second_connection()  # the worker stops inside the invoice step
		holder.cursor().execute("select current from `tabSeries` where name = %s for update", invoice_series)
		worker = start_worker(self, [OWN_QUEUE], "killed-worker")
		try:
			self.wait_for(lambda: self.step_done(run_name, "Delivery Note"), "the delivery step")
			(horse,) = psutil.Process(worker.pid).children()
			os.kill(worker.pid, signal.SIGKILL)
			os.kill(horse.pid, signal.SIGKILL)
			worker.wait(timeout=30)
			horse.wait(timeout=30)
			self.killed_at, self.killed_on = time.monotonic(), now_datetime()
		finally:
			holder.rollback()
			holder.close()

		self.fresh()
		self.assertEqual(frappe.db.get_value("Sales Automation Run", run_name, "status"), "Running")
		job = get_job(background.order_job_id(sales_order_name))
		self.assertEqual(job.get_status(), JobStatus.STARTED)  # what RQ still says of the dead job


class TestDeadWorkersRunsRunAgain(DeadWorkerTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.run_ended, cls.order_completed = Receiver(), Receiver()
		cls.run_ended_webhook = register_webhook(RUN_ENDED, cls.run_ended.url)
		cls.order_completed_webhook = register_webhook(ORDER_COMPLETED, cls.order_completed.url)
		frappe.db.commit()  # the workers must see the Webhooks
		frappe.cache.delete_value("webhooks")

	@classmethod
	def tearDownClass(cls):
		frappe.set_user("Administrator")
		frappe.db.rollback()
		for webhook in (cls.run_ended_webhook, cls.order_completed_webhook):
			frappe.delete_doc("Webhook", webhook.name, force=True)
		frappe.db.commit()  # no later test of the site posts to the stopped receivers
		frappe.cache.delete_value("webhooks")
		cls.run_ended.stop()
		cls.order_completed.stop()
		super().tearDownClass()

	def test_a_rules_run_whose_worker_is_killed_between_steps_completes_by_the_scheduler_alone(self):
		customer = factories.make_customer()
		factories.make_rule(customer, execution_mode="Background")
		item_code = factories.make_item(stock_qty=5)
		self.recovery_rig()
		sales_order = factories.make_sales_order(
			[{"item_code": item_code, "qty": 2, "rate": 30}], customer=customer
		)
		run_name = factories.run_of(sales_order.name).name
		frappe.db.commit()  # the run's job is queued now

		self.kill_its_worker_between_two_steps(run_name, sales_order.name)
		self.assert_recovered_by_the_scheduler(run_name, sales_order.name, item_code, 2)

	def test_an_async_one_call_whose_worker_is_killed_between_steps_completes_by_the_scheduler_alone(
		self,
	):
		item_code = factories.make_item(stock_qty=5)
		order = factories.order_payload(factories.make_customer(), item_code, qty=2, rate=30)
		frappe.db.commit()  # the server sees only committed data
		self.recovery_rig()
		# started after the site's queue is declared: a process knows the queues of its first look
		server = self.enterContext(LiveServer(workers=1, threads=2))
		response = server.session(self.api_key, self.api_secret).post(
			f"{server.url}/api/method/sales_automation.api.run_sales_cycle",
			json={"order": order, "payment": {"mode_of_payment": self.env.cash_mode}, "async": True},
			timeout=120,
		)
		self.assertEqual(response.status_code, 202, response.text)
		accepted = response.json()["message"]
		self.fresh()
		self.assertEqual(frappe.db.get_value("Sales Automation Run", accepted["run"], "trigger"), "API")

		self.kill_its_worker_between_two_steps(accepted["run"], accepted["sales_order"])
		self.assert_recovered_by_the_scheduler(accepted["run"], accepted["sales_order"], item_code, 2)

	def recovery_rig(self):
		"""The site's own queue for its runs, and the real scheduler ticking for the site."""
		own_queue(self)
		self.retry_job = schedule_the_apps_job_alone(self)
		self.scheduler = start_scheduler(self)

	def assert_recovered_by_the_scheduler(self, run_name: str, sales_order_name: str, item_code: str, qty):
		"""With a fresh worker and the scheduler only, the run completes within two scheduler ticks of the
		kill, makes one cycle, and each Webhook tells its receiver once; the tick after that changes
		nothing."""
		tick = get_scheduler_tick()
		# From now on the site's runs go on the bench's queue: the scheduler puts the retry job of every
		# site on `default`, where any worker of the bench may take it (the dev servers' one, say), and
		# such a worker knows none of this site's own queues.
		set_queue(BENCH_QUEUE)
		# the scheduler's jobs go on their Scheduled Job Type's queue, the Webhooks' on theirs
		queues = [BENCH_QUEUE, self.retry_job.get_queue_name()] + [
			webhook.background_jobs_queue or "default"
			for webhook in (self.run_ended_webhook, self.order_completed_webhook)
		]
		start_worker(self, queues, "fresh-worker")

		status = factories.wait_for_run_to_end(run_name, timeout=2 * tick + AFTER_THE_TICK_SECONDS)
		seconds = time.monotonic() - self.killed_at
		finished_at = frappe.db.get_value("Sales Automation Run", run_name, "finished_at")
		ticks = self.retry_job_runs(self.killed_on, finished_at or now_datetime())
		print(
			f"\nrun {run_name} {status} {seconds:.1f} s after its worker was killed "
			f"({ticks} runs of the scheduler's retry job; a tick every {tick} s)"
		)
		self.assertEqual(status, "Completed", f"see {self.scheduler.log_path} and the Scheduled Job Log")
		self.assertIn(ticks, (1, 2), "the run completes at the first or second tick after the kill")
		self.assert_one_cycle(sales_order_name, item_code, qty)

		# the tick after the run completed finds nothing to do
		self.wait_for(
			lambda: self.retry_job_runs(get_datetime(finished_at), now_datetime(), "Complete"),
			"the next tick's retry job",
			seconds=tick + AFTER_THE_TICK_SECONDS,
		)
		self.wait_for(lambda: self.run_ended.of(run_name), "the run-ended event", seconds=60)
		self.wait_for(lambda: self.order_completed.of_order(sales_order_name), "the order-completed event")
		self.wait_for(lambda: all(self.request_logs(run_name)), "the Webhook Request Logs", seconds=60)
		self.fresh()
		self.assertEqual(frappe.db.get_value("Sales Automation Run", run_name, "status"), "Completed")
		self.assertEqual(frappe.db.count("Sales Automation Run", {"sales_order": sales_order_name}), 1)
		self.assertEqual([d["status"] for d in self.run_ended.of(run_name)], ["Completed"])
		self.assertEqual([d["run"] for d in self.order_completed.of_order(sales_order_name)], [run_name])
		self.assertEqual(self.request_logs(run_name), [1, 1])  # Frappe's own record: one request each

	def retry_job_runs(self, since: datetime, until: datetime, status: str | None = None) -> int:
		"""How many times the scheduler's retry job started between the two moments (Scheduled Job Log)."""
		self.fresh()
		Log = frappe.qb.DocType("Scheduled Job Log")
		query = (
			frappe.qb.from_(Log)
			.select(Log.name)
			.where(
				(Log.scheduled_job_type == self.retry_job.name)
				& (Log.creation > since)
				& (Log.creation <= until)
			)
		)
		if status:
			query = query.where(Log.status == status)
		return len(query.run())

	def request_logs(self, run_name: str) -> list[int]:
		"""How many requests Frappe logged for the run, per Webhook (run ended, order completed)."""
		self.fresh()
		return [
			frappe.db.count("Webhook Request Log", {"webhook": webhook.name, "reference_document": run_name})
			for webhook in (self.run_ended_webhook, self.order_completed_webhook)
		]


class TestOneRetryAfterAWholeWorkerDied(DeadWorkerTestCase):
	def test_one_retry_due_runs_call_queues_the_job_of_a_worker_killed_between_steps_again(self):
		"""retry_due_runs called by hand, as one tick runs it: the dead job RQ still lists as started is
		replaced by a queued one, which a fresh worker completes."""
		own_queue(self)
		sales_order = factories.order_with_rule(2, 30, stock=5, execution_mode="Background")
		run_name = factories.run_of(sales_order.name).name
		item_code = sales_order.items[0].item_code
		frappe.db.commit()  # the job is queued now

		self.kill_its_worker_between_two_steps(run_name, sales_order.name)
		self.wait_for(lambda: not locks.is_held_elsewhere(sales_order.name), "the lock to be freed")
		# a tick comes a minute after the last: the dead job started longer ago than a job's start-up
		job = get_job(background.order_job_id(sales_order.name))
		started_ago = (datetime.utcnow() - job.started_at.replace(tzinfo=None)).total_seconds()
		time.sleep(max(0, background.JOB_START_GRACE_SECONDS - started_ago))

		background.retry_due_runs()
		frappe.db.commit()  # the scheduler's job commits: its jobs are queued then
		self.assertEqual(get_job(background.order_job_id(sales_order.name)).get_status(), JobStatus.QUEUED)
		fresh_worker = start_worker(self, [OWN_QUEUE], "fresh-worker", burst=True)
		fresh_worker.wait(timeout=300)
		status = factories.wait_for_run_to_end(run_name)
		print(
			f"\nrun {run_name} {status} {time.monotonic() - self.killed_at:.1f} s after its worker was killed"
		)
		self.assertEqual(status, "Completed")
		self.assert_one_cycle(sales_order.name, item_code, 2)
