"""Exactly once under concurrency: every entry point racing every other on one order, over real HTTP
against a live server and a real RQ worker, then counts and ledgers read back from the database."""

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pymysql

import frappe
from frappe.model.naming import parse_naming_series
from frappe.utils import flt

from sales_automation import locks
from sales_automation.api import run_sales_cycle
from sales_automation.api.runs import resume_run
from sales_automation.exceptions import DatabaseBusyError, OrderBusyError
from sales_automation.live_server import LiveServer
from sales_automation.setup.demo import SALES_ROLES, ensure_api_user
from sales_automation.tests import factories
from sales_automation.tests.base import AutomationTestCase

API = "/api/method/sales_automation.api"


def race(calls: list, workers: int | None = None) -> list:
	"""Run the calls at the same instant from their own threads; their results in order."""
	barrier = threading.Barrier(len(calls))

	def start(call):
		barrier.wait()
		return call()

	with ThreadPoolExecutor(max_workers=workers or len(calls)) as pool:
		return list(pool.map(start, calls))


def second_connection():
	"""A connection of its own to the site's database (another session, as another process has)."""
	return pymysql.connect(
		host=frappe.conf.db_host or "127.0.0.1",
		port=int(frappe.conf.db_port or 3306),
		user=frappe.conf.db_user or frappe.conf.db_name,
		password=frappe.conf.db_password,
		database=frappe.conf.db_name,
		autocommit=False,
	)


def series_key(doctype: str) -> str:
	"""The tabSeries row ERPNext's naming takes (FOR UPDATE) when it names a new `doctype`."""
	series = frappe.get_meta(doctype).get_field("naming_series").options.split("\n")[0]
	key = parse_naming_series(series)
	frappe.db.sql("insert ignore into `tabSeries` (name, current) values (%s, 0)", key)
	frappe.db.commit()
	return key


def start_worker(burst: bool = True) -> subprocess.Popen:
	return subprocess.Popen(
		[sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "worker", "--queue", "default"]
		+ (["--burst"] if burst else []),
		cwd=os.path.abspath(frappe.local.sites_path),
		stdout=subprocess.DEVNULL,
		stderr=subprocess.DEVNULL,
	)


class ConcurrencyTestCase(AutomationTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.api_key, cls.api_secret = ensure_api_user("_sa_race_integration@example.com", SALES_ROLES)
		frappe.db.commit()

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.local.response.pop("error", None)

	def fresh(self):
		frappe.db.rollback()  # see what the server and the workers committed

	def step_done(self, run_name: str, step: str):
		self.fresh()
		run = frappe.get_doc("Sales Automation Run", run_name)
		return run if {row.step: row.status for row in run.steps}.get(step) == "Completed" else None

	def wait_for(self, probe, what: str, seconds: float = 120):
		deadline = time.monotonic() + seconds
		while time.monotonic() < deadline:
			result = probe()
			if result:
				return result
			time.sleep(0.3)
		self.fail(f"timed out waiting for {what}")

	def assert_one_cycle(self, sales_order_name: str, item_code: str, qty: float):
		"""One submitted DN, SI and PE; stock moved once; every voucher's GL balanced; invoice paid."""
		self.fresh()
		docs = factories.documents_of(sales_order_name)
		self.assertEqual({d: len(names) for d, names in docs.items()}, dict.fromkeys(docs, 1), docs)
		for doctype, names in docs.items():
			self.assertEqual(frappe.db.get_value(doctype, names[0], "docstatus"), 1, doctype)
			debit, credit = factories.gl_totals(names)
			if doctype != "Delivery Note" or debit:  # a DN posts GL only with perpetual inventory
				self.assertEqual(flt(debit, 2), flt(credit, 2), doctype)
		moved = frappe.db.sql(
			"""select sum(actual_qty) from `tabStock Ledger Entry`
			where item_code = %s and voucher_type in ('Delivery Note', 'Sales Invoice') and is_cancelled = 0""",
			item_code,
		)[0][0]
		self.assertEqual(flt(moved), -qty)
		self.assertEqual(frappe.db.get_value("Sales Invoice", docs["Sales Invoice"][0], "status"), "Paid")
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order_name, "status"), "Completed")
		return docs


class TestRacesOverHTTP(ConcurrencyTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.server = LiveServer(workers=2, threads=6).__enter__()

	@classmethod
	def tearDownClass(cls):
		cls.server.__exit__(None, None, None)
		super().tearDownClass()

	def post(self, method: str, body: dict, path: str | None = None):
		"""One call on a connection of its own, as separate clients make them: a requests.Session is not
		shared safely between threads, and a pooled keep-alive connection the server has meanwhile
		closed answers with a reset."""
		with self.server.session(self.api_key, self.api_secret) as http:
			return http.post(f"{self.server.url}{path or f'{API}.{method}'}", json=body, timeout=120)

	def submitted_order(self, qty=2, **fields):
		customer = fields.pop("customer", None) or factories.make_customer()
		item_code = factories.make_item(stock_qty=qty + 5)
		sales_order = factories.make_sales_order(
			[{"item_code": item_code, "qty": qty, "rate": 30}], customer=customer, **fields
		)
		frappe.db.commit()
		return sales_order, item_code

	def assert_answers(self, responses, allowed=(200, 409)):
		for response in responses:
			self.assertIn(response.status_code, allowed, response.text[:600])
			self.assertNotIn("exc", response.json())  # an answer, never a traceback

	def test_concurrent_one_calls_on_one_existing_order_make_one_cycle(self):
		sales_order, item_code = self.submitted_order(automate=False)
		body = {"sales_order": sales_order.name, "payment": {"mode_of_payment": self.env.cash_mode}}
		responses = race([lambda: self.post("run_sales_cycle", body)] * 6)

		self.assert_answers(responses)
		done = [r.json()["message"] for r in responses if r.status_code == 200]
		self.assertEqual(len(done), 1, [r.text[:300] for r in responses])
		docs = self.assert_one_cycle(sales_order.name, item_code, 2)
		self.assertEqual(done[0]["delivery_note"], docs["Delivery Note"][0])
		for refused in (r for r in responses if r.status_code == 409):
			self.assertEqual(refused.json()["error"]["field"], "sales_order")

	def test_concurrent_step_calls_answer_the_one_document_they_share(self):
		sales_order, item_code = self.submitted_order(automate=False)
		delivered = race([lambda: self.post("deliver", {"sales_order": sales_order.name})] * 5)
		self.assert_answers(delivered, allowed=(200,))
		notes = {r.json()["message"]["name"] for r in delivered}
		self.assertEqual(len(notes), 1)
		self.assertEqual(sum(r.json()["message"]["created"] for r in delivered), 1)

		(delivery_note,) = notes
		invoiced = race([lambda: self.post("invoice", {"delivery_note": delivery_note})] * 5)
		self.assert_answers(invoiced, allowed=(200,))
		invoices = {r.json()["message"]["name"] for r in invoiced}
		self.assertEqual(len(invoices), 1)
		self.assertEqual(sum(r.json()["message"]["created"] for r in invoiced), 1)

		(sales_invoice,) = invoices
		body = {"sales_invoice": sales_invoice, "mode_of_payment": self.env.cash_mode}
		paid = race([lambda: self.post("pay", body)] * 5)
		self.assert_answers(paid, allowed=(200,))
		self.assertEqual(len({r.json()["message"]["name"] for r in paid}), 1)
		self.assertEqual(sum(r.json()["message"]["created"] for r in paid), 1)
		self.assert_one_cycle(sales_order.name, item_code, 2)

	def test_hook_job_resume_endpoint_steps_and_bulk_racing_on_one_order_make_one_cycle(self):
		customer = factories.make_customer()
		factories.make_rule(customer, execution_mode="Background")
		sales_order, item_code = self.submitted_order(customer=customer)  # the hook queued its job
		run_name = factories.run_of(sales_order.name).name
		worker = start_worker()
		cash = {"mode_of_payment": self.env.cash_mode}
		try:
			responses = race(
				[
					lambda: self.post("run_sales_cycle", {"sales_order": sales_order.name, "payment": cash}),
					lambda: self.post("run_sales_cycle", {"sales_order": sales_order.name, "payment": cash}),
					lambda: self.post("runs.resume_run", {"run": run_name}),
					lambda: self.post("runs.resume_run", {"run": run_name}),
					lambda: self.post("runs.run_bulk", {"sales_orders": [sales_order.name]}),
					lambda: self.post("deliver", {"sales_order": sales_order.name}),
				]
			)
			worker.wait(timeout=300)
		finally:
			if worker.poll() is None:
				worker.kill()
		self.assert_answers(responses)
		self.assert_one_cycle(sales_order.name, item_code, 2)
		self.assertIn(
			frappe.db.get_value("Sales Automation Run", run_name, "status"), ("Completed", "Queued")
		)

	def test_desk_submit_with_a_same_transaction_rule_racing_the_one_call_makes_one_cycle(self):
		customer = factories.make_customer()
		factories.make_rule(customer)
		item_code = factories.make_item(stock_qty=5)
		draft = factories.make_sales_order(
			[{"item_code": item_code, "qty": 1, "rate": 30}], customer=customer, submit=False
		)
		frappe.db.commit()
		doc = draft.as_dict(convert_dates_to_str=True)
		responses = race(
			[
				lambda: self.post("run_sales_cycle", {"sales_order": draft.name}),
				lambda: self.post(None, {"doc": doc}, path="/api/method/frappe.client.submit"),
			]
		)
		self.assertTrue(any(r.status_code == 200 for r in responses), [r.text[:300] for r in responses])
		for response in responses:
			self.assertLess(response.status_code, 500, response.text[:600])
		self.assert_one_cycle(draft.name, item_code, 1)


class TestDeadWorkers(ConcurrencyTestCase):
	def test_a_worker_killed_between_steps_is_told_from_a_live_one_and_its_run_resumes_at_once(self):
		customer = factories.make_customer()
		factories.make_rule(customer, execution_mode="Background")
		item_code = factories.make_item(stock_qty=5)
		invoice_series = series_key("Sales Invoice")
		sales_order = factories.make_sales_order(
			[{"item_code": item_code, "qty": 2, "rate": 30}], customer=customer
		)
		run_name = factories.run_of(sales_order.name).name
		frappe.db.commit()  # the job is queued now

		# another session holds the invoice's naming row: the worker stops inside the invoice step
		holder = second_connection()
		holder.cursor().execute("select current from `tabSeries` where name = %s for update", invoice_series)
		worker = start_worker()
		try:
			run = self.wait_for(lambda: self.step_done(run_name, "Delivery Note"), "the delivery step")
			delivery_note = run.delivery_note
			time.sleep(1)  # the invoice step is under way, waiting for the naming row

			# alive: the run is Running, its worker holds the order, resume is refused with a 409
			self.assertEqual(run.status, "Running")
			self.assertTrue(locks.is_held_elsewhere(sales_order.name))
			with self.assertRaises(OrderBusyError):
				resume_run(run_name)
			self.fresh()

			horses = psutil.Process(worker.pid).children()
			self.assertEqual(len(horses), 1)
			os.kill(horses[0].pid, signal.SIGKILL)
			horses[0].wait(timeout=30)
		finally:
			holder.rollback()
			holder.close()
			worker.wait(timeout=120)

		# dead: its connection is gone, so is the lock; no clock to wait for
		self.wait_for(lambda: not locks.is_held_elsewhere(sales_order.name), "the lock to be freed")
		run = frappe.get_doc("Sales Automation Run", run_name)
		self.assertEqual(run.status, "Running")
		self.assertEqual({row.step: row.status for row in run.steps}["Delivery Note"], "Completed")

		answer = resume_run(run_name)
		frappe.db.commit()
		self.assertEqual(answer["status"], "Completed", answer["error"])
		self.assertEqual(answer["delivery_note"], delivery_note)  # the finished step was kept
		self.assert_one_cycle(sales_order.name, item_code, 2)

	def test_the_scheduler_queues_a_dead_workers_run_again_at_once_and_leaves_a_live_one(self):
		sales_order = factories.order_with_rule(1, 30, stock=5, execution_mode="Background")
		run_name = factories.run_of(sales_order.name).name
		frappe.db.set_value("Sales Automation Run", run_name, "status", "Running")
		frappe.db.commit()

		holder = second_connection()  # a live executor: another connection holds the order's lock
		holder.cursor().execute("select get_lock(%s, 0)", locks.lock_name(sales_order.name))
		try:
			frappe.get_attr("sales_automation.engine.retry_due_runs")()
			self.fresh()
			self.assertEqual(frappe.db.get_value("Sales Automation Run", run_name, "status"), "Running")
		finally:
			holder.close()  # the executor dies

		self.wait_for(lambda: not locks.is_held_elsewhere(sales_order.name), "the lock to be freed")
		frappe.get_attr("sales_automation.engine.retry_due_runs")()
		self.fresh()
		self.assertEqual(frappe.db.get_value("Sales Automation Run", run_name, "status"), "Queued")


class TestTransientDatabaseErrors(ConcurrencyTestCase):
	def setUp(self):
		frappe.db.sql("set session innodb_lock_wait_timeout = 1")
		self.customer = factories.make_customer()
		self.item_code = factories.make_item(stock_qty=10)
		self.invoice_series = series_key("Sales Invoice")

	def tearDown(self):
		frappe.db.sql("set session innodb_lock_wait_timeout = 50")
		super().tearDown()

	def call(self):
		return run_sales_cycle(
			order=factories.order_payload(self.customer, self.item_code, qty=1, rate=10),
			payment={"mode_of_payment": self.env.cash_mode},
		)

	def hold_invoice_series(self, seconds: float):
		"""Another session holds the invoice's naming row for `seconds`: every invoice waits on it."""
		holder = second_connection()
		holder.cursor().execute(
			"select current from `tabSeries` where name = %s for update", self.invoice_series
		)
		timer = threading.Timer(seconds, lambda: (holder.rollback(), holder.close()))
		timer.start()
		return timer

	def test_a_lock_wait_that_clears_is_retried_and_the_call_succeeds(self):
		before = factories.count_documents()
		timer = self.hold_invoice_series(1.5)
		try:
			result = self.call()
		finally:
			timer.join()
		frappe.db.commit()
		self.assertEqual(result["status"], "Completed")
		after = factories.count_documents()
		for doctype in ("Sales Order", "Delivery Note", "Sales Invoice", "Payment Entry"):
			self.assertEqual(after[doctype] - before[doctype], 1, doctype)

	def test_a_lock_wait_that_persists_answers_503_and_leaves_nothing_behind(self):
		before = factories.count_documents()
		timer = self.hold_invoice_series(12)
		try:
			with self.assertRaises(DatabaseBusyError) as caught:
				self.call()
		finally:
			timer.join()
		self.assertEqual(caught.exception.http_status_code, 503)
		self.assertEqual(frappe.local.flags.sales_automation_retry_after, 2)
		self.assertEqual(frappe.local.response["error"]["type"], "DatabaseBusyError")
		frappe.local.flags.pop("sales_automation_retry_after", None)
		self.fresh()
		self.assertEqual(factories.count_documents(), before)

	def test_the_retry_after_header_goes_out_with_the_503(self):
		from werkzeug.wrappers import Response

		from sales_automation.api.http import after_request

		response = Response(status=503)
		frappe.local.flags.sales_automation_retry_after = 2
		try:
			after_request(response=response)
		finally:
			frappe.local.flags.pop("sales_automation_retry_after", None)
		self.assertEqual(response.headers["Retry-After"], "2")
