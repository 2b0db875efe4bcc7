"""Outbound events: standard Frappe Webhooks on Sales Automation Run, set up as docs/events.md says.
One tells a receiver once each time a run ends, with the run's order, documents, totals and error; the
other tells it once per order that the order is delivered, billed and paid, whichever path did it."""

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import frappe
from frappe.utils import add_to_date, now_datetime

from sales_automation import engine
from sales_automation.api import deliver, get_run, invoice, pay
from sales_automation.tests import factories
from sales_automation.tests.base import AutomationTestCase

RUN_ENDED = "a run ended"
ORDER_COMPLETED = "the order is completed"


def documented_webhook(event: str) -> dict:
	"""The Webhook docs/events.md sets up for `event` (its "## Event: ..." heading): doc event,
	condition and JSON Request Body, so the page and the tests cannot drift apart."""
	page = (Path(frappe.get_app_path("sales_automation")).parent / "docs" / "events.md").read_text()
	section = page.split(f"\n## Event: {event}\n", 1)[1].split("\n## ", 1)[0]

	def field(label: str) -> str:
		return re.search(rf"^\| {label} \| `(.+)` \|$", section, re.MULTILINE).group(1)

	return {
		"webhook_docevent": field("Doc Event"),
		"condition": field("Conditions"),
		"webhook_json": re.search(r"```jinja\n(.*?)```", section, re.DOTALL).group(1),
	}


def register_webhook(event: str, url: str):
	"""A Webhook on Sales Automation Run exactly as docs/events.md sets it up for `event`, to `url`."""
	return frappe.get_doc(
		{
			"doctype": "Webhook",
			"name": f"_SA {event} {frappe.generate_hash(length=6)}",
			"webhook_doctype": "Sales Automation Run",
			**documented_webhook(event),
			"request_url": url,
			"request_method": "POST",
			"request_structure": "JSON",
			"webhook_headers": [{"key": "Content-Type", "value": "application/json"}],
			"enabled": 1,
		}
	).insert()


class Receiver:
	"""An HTTP endpoint on 127.0.0.1 that keeps every JSON body POSTed to it."""

	def __init__(self):
		self.deliveries = []
		receiver = self

		class Handler(BaseHTTPRequestHandler):
			def do_POST(self):
				body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
				receiver.deliveries.append(json.loads(body))
				self.send_response(200)
				self.end_headers()
				self.wfile.write(b"ok")

			def log_message(self, *args):
				pass

		self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
		self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sales-automation/runs"
		threading.Thread(target=self.server.serve_forever, daemon=True).start()

	def stop(self):
		self.server.shutdown()
		self.server.server_close()

	def of(self, run_name: str) -> list[dict]:
		return [delivery for delivery in self.deliveries if delivery["run"] == run_name]

	def of_order(self, sales_order_name: str) -> list[dict]:
		return [delivery for delivery in self.deliveries if delivery["sales_order"] == sales_order_name]

	def wait_for(self, run_name: str, timeout: float = 60) -> list[dict]:
		"""The run's deliveries once there is one (Frappe sends them from a background job), or none
		after `timeout` seconds."""
		return self.wait_until(lambda: self.of(run_name), timeout)

	def wait_for_order(self, sales_order_name: str, count: int = 1, timeout: float = 60) -> list[dict]:
		"""The order's deliveries once there are `count`, or those there are after `timeout` seconds."""
		return self.wait_until(lambda: self.of_order(sales_order_name), timeout, count)

	def wait_until(self, deliveries, timeout: float, count: int = 1) -> list[dict]:
		deadline = time.monotonic() + timeout
		while len(deliveries()) < count and time.monotonic() < deadline:
			time.sleep(0.2)
		return deliveries()


def subscribe(test_class):
	"""Both Webhooks of docs/events.md, each to a receiver of its own, on the test class."""
	test_class.receiver = Receiver()
	test_class.completed = Receiver()
	test_class.webhook = register_webhook(RUN_ENDED, test_class.receiver.url)
	test_class.completed_webhook = register_webhook(ORDER_COMPLETED, test_class.completed.url)


class TestRunEvents(AutomationTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		subscribe(cls)
		frappe.db.commit()  # the worker process must see the Webhooks
		frappe.cache.delete_value("webhooks")

	@classmethod
	def tearDownClass(cls):
		frappe.set_user("Administrator")
		frappe.db.rollback()
		frappe.delete_doc("Webhook", cls.webhook.name, force=True)
		frappe.delete_doc("Webhook", cls.completed_webhook.name, force=True)
		frappe.db.set_single_value("Sales Automation Settings", "max_attempts", 3)
		frappe.db.commit()  # no later test of the site posts to the stopped receiver
		frappe.cache.delete_value("webhooks")
		cls.receiver.stop()
		cls.completed.stop()
		super().tearDownClass()

	def request_logs_of(self, run_name: str, timeout: float = 60) -> int:
		"""How many requests Frappe logged for the run, once the job that sent the first has committed."""
		deadline = time.monotonic() + timeout
		while True:
			frappe.db.rollback()  # a fresh snapshot: see what the worker committed
			count = frappe.db.count(
				"Webhook Request Log", {"webhook": self.webhook.name, "reference_document": run_name}
			)
			if count or time.monotonic() > deadline:
				return count
			time.sleep(0.5)

	def failing_background_order(self):
		"""A submitted order of a Background rule whose delivery fails: no stock, shortage policy Fail."""
		return factories.order_with_rule(1, 50, stock=0, execution_mode="Background")

	def test_a_worker_completing_a_background_run_delivers_it_once_with_documents_and_totals(self):
		customer = factories.make_customer()
		rule = factories.make_rule(customer, execution_mode="Background")
		item_code = factories.make_item(stock_qty=4)
		sales_order = factories.make_sales_order(
			[{"item_code": item_code, "qty": 2, "rate": 35}], customer=customer
		)
		run_name = factories.run_of(sales_order.name).name
		frappe.db.commit()  # the run's job is pushed to the queue only now
		self.assertEqual(self.receiver.of(run_name), [], "the run was created Queued: not an ending")

		worker = factories.work_off_queue()
		self.assertEqual(worker.returncode, 0, worker.stderr[-2000:])
		self.assertEqual(factories.wait_for_run_to_end(run_name), "Completed")
		deliveries = self.receiver.wait_for(run_name)

		self.assertEqual(len(deliveries), 1, deliveries)
		documents = factories.documents_of(sales_order.name)
		self.assertEqual(
			{key: value for key, value in deliveries[0].items() if key not in ("started_at", "finished_at")},
			{
				"run": run_name,
				"status": "Completed",
				"trigger": "Submit",
				"execution_mode": "Background",
				"sales_order": sales_order.name,
				"customer": customer,
				"company": self.env.company,
				"rule": rule.name,
				"documents": {
					"delivery_note": documents["Delivery Note"][0],
					"sales_invoice": documents["Sales Invoice"][0],
					"payment_entry": documents["Payment Entry"][0],
				},
				"totals": {
					"currency": sales_order.currency,
					"grand_total": 70.0,
					"invoiced": 70.0,
					"paid": 70.0,
					"outstanding": 0.0,
				},
				"error": None,
				"left_open": None,
				"duration": frappe.db.get_value("Sales Automation Run", run_name, "duration"),
			},
		)
		self.assertTrue(deliveries[0]["started_at"] and deliveries[0]["finished_at"])
		# Frappe's own record of each request, committed by the job that sent it
		self.assertEqual(self.request_logs_of(run_name), 1)
		self.assertEqual(len(self.receiver.of(run_name)), 1)
		# the run delivered, billed and paid the order: it completed it, once
		completed = self.completed.wait_for_order(sales_order.name)
		self.assertEqual(len(completed), 1, completed)
		self.assertEqual((completed[0]["run"], completed[0]["trigger"]), (run_name, "Submit"))
		self.assertEqual(
			completed[0]["documents"],
			{
				"delivery_notes": documents["Delivery Note"],
				"sales_invoices": documents["Sales Invoice"],
				"payment_entries": documents["Payment Entry"],
			},
		)

	def test_a_background_run_that_fails_for_good_in_a_worker_is_delivered_with_its_error(self):
		frappe.db.set_single_value("Sales Automation Settings", "max_attempts", 1)
		self.addCleanup(frappe.db.set_single_value, "Sales Automation Settings", "max_attempts", 3)
		sales_order = self.failing_background_order()
		run_name = factories.run_of(sales_order.name).name
		frappe.db.commit()  # the worker reads the settings and the run as committed

		worker = factories.work_off_queue()
		self.assertEqual(worker.returncode, 0, worker.stderr[-2000:])
		self.assertEqual(factories.wait_for_run_to_end(run_name), "Failed")
		deliveries = self.receiver.wait_for(run_name)

		self.assertEqual(len(deliveries), 1, deliveries)
		self.assertEqual(deliveries[0]["status"], "Failed")
		self.assertEqual(deliveries[0]["sales_order"], sales_order.name)
		self.assertTrue(deliveries[0]["error"].startswith("Delivery Note: "), deliveries[0]["error"])
		self.assertIn("Not enough stock", deliveries[0]["error"])
		self.assertEqual(
			deliveries[0]["documents"], {"delivery_note": None, "sales_invoice": None, "payment_entry": None}
		)
		self.assertEqual(deliveries[0]["totals"]["outstanding"], 50.0)
		self.assertEqual(deliveries[0]["totals"]["invoiced"], 0.0)

	def test_a_failed_attempt_to_be_retried_delivers_nothing_and_the_last_one_delivers_once(self):
		frappe.db.set_single_value("Sales Automation Settings", "max_attempts", 2)
		self.addCleanup(frappe.db.set_single_value, "Sales Automation Settings", "max_attempts", 3)
		sales_order = self.failing_background_order()
		run_name = factories.run_of(sales_order.name).name

		# in this process: Frappe sends a test's webhook requests at once, when the job commits
		engine.process_run(run_name, drain_seconds=0)
		self.assertEqual(frappe.db.get_value("Sales Automation Run", run_name, "status"), "Queued")
		self.assertEqual(self.receiver.of(run_name), [])

		frappe.db.set_value(
			"Sales Automation Run", run_name, "next_retry_at", add_to_date(now_datetime(), seconds=-1)
		)
		engine.process_run(run_name, drain_seconds=0)
		self.assertEqual(frappe.db.get_value("Sales Automation Run", run_name, "status"), "Failed")
		self.assertEqual([delivery["status"] for delivery in self.receiver.of(run_name)], ["Failed"])

	def test_a_same_transaction_run_inserted_once_at_the_end_is_delivered_and_so_is_its_cancellation(self):
		sales_order = factories.order_with_rule(1, 40, stock=2)  # Same Transaction
		run_name = factories.run_of(sales_order.name).name
		self.assertEqual(self.receiver.of(run_name), [], "Frappe sends after the commit, not before")
		frappe.db.commit()

		deliveries = self.receiver.of(run_name)
		self.assertEqual([delivery["status"] for delivery in deliveries], ["Completed"])
		self.assertEqual(deliveries[0]["execution_mode"], "Same Transaction")
		self.assertEqual(deliveries[0]["totals"]["paid"], 40.0)

		engine.cancel_cycle(sales_order.name)
		frappe.db.commit()

		deliveries = self.receiver.of(run_name)
		self.assertEqual([delivery["status"] for delivery in deliveries], ["Completed", "Cancelled"])
		self.assertEqual(
			(
				deliveries[1]["totals"]["invoiced"],
				deliveries[1]["totals"]["paid"],
				deliveries[1]["totals"]["outstanding"],
			),
			(0.0, 0.0, 40.0),
		)

	def test_step_endpoints_send_the_order_completed_event_once_when_paid_and_a_no_op_call_nothing(self):
		item_code = factories.make_item(stock_qty=3)
		sales_order = factories.make_sales_order(
			[{"item_code": item_code, "qty": 3, "rate": 125}], customer=factories.make_customer()
		)
		frappe.db.commit()  # the endpoints roll back what they refuse
		self.assertIsNone(factories.run_of(sales_order.name), "no rule: the submit started no run")

		def call(endpoint, **arguments):
			result = endpoint(**arguments)
			frappe.db.commit()  # Frappe sends a test's Webhook requests at once, when it commits
			return result

		delivered = call(deliver, sales_order=sales_order.name)
		invoiced = call(invoice, delivery_note=delivered["name"])
		self.assertEqual(self.completed.of_order(sales_order.name), [], "delivered and billed, not paid")
		paid = call(pay, sales_invoice=invoiced["name"], mode_of_payment=self.env.cash_mode)

		step_runs = [delivered["run"], invoiced["run"], paid["run"]]
		self.assertEqual(
			[
				(delivery["run"], delivery["status"], delivery["trigger"])
				for delivery in self.receiver.deliveries
				if delivery["sales_order"] == sales_order.name
			],
			[(run_name, "Completed", "Step") for run_name in step_runs],
		)
		completed = self.completed.of_order(sales_order.name)
		self.assertEqual(len(completed), 1, completed)
		self.assertEqual(
			{key: completed[0][key] for key in ("event", "run", "trigger", "documents", "totals")},
			{
				"event": "order_completed",
				"run": paid["run"],
				"trigger": "Step",
				"documents": {
					"delivery_notes": [delivered["name"]],
					"sales_invoices": [invoiced["name"]],
					"payment_entries": [paid["name"]],
				},
				"totals": {
					"currency": sales_order.currency,
					"grand_total": 375.0,
					"invoiced": 375.0,
					"paid": 375.0,
					"outstanding": 0.0,
				},
			},
		)
		self.assertEqual(
			frappe.get_all(
				"Sales Automation Run", {"sales_order": sales_order.name, "order_completed": 1}, pluck="name"
			),
			[paid["run"]],
		)

		sent = (len(self.receiver.deliveries), len(self.completed.deliveries))
		again = call(deliver, sales_order=sales_order.name)
		self.assertEqual((again["name"], again["created"], again["run"]), (delivered["name"], False, None))
		self.assertEqual(
			sorted(frappe.get_all("Sales Automation Run", {"sales_order": sales_order.name}, pluck="name")),
			sorted(step_runs),
			"a call that changes nothing records no run",
		)
		self.assertEqual((len(self.receiver.deliveries), len(self.completed.deliveries)), sent)
		self.assertEqual(factories.documents_of(sales_order.name)["Delivery Note"], [delivered["name"]])

	def test_a_cycle_undone_and_run_again_does_not_complete_its_order_a_second_time(self):
		sales_order = factories.order_with_rule(1, 40, stock=2)  # Same Transaction: completed on submit
		first_run = factories.run_of(sales_order.name).name
		frappe.db.commit()
		self.assertEqual([d["run"] for d in self.completed.of_order(sales_order.name)], [first_run])

		engine.cancel_cycle(sales_order.name)
		frappe.db.commit()  # its run ends again, Cancelled: a run ending, not an order completed
		self.assertEqual([d["status"] for d in self.receiver.of(first_run)], ["Completed", "Cancelled"])
		rerun = engine.start_for_order(frappe.get_doc("Sales Order", sales_order.name), trigger="Manual")
		frappe.db.commit()

		self.assertEqual(frappe.db.get_value("Sales Automation Run", rerun.name, "status"), "Completed")
		self.assertEqual(frappe.db.get_value("Sales Automation Run", rerun.name, "order_completed"), 0)
		self.assertEqual([d["run"] for d in self.completed.of_order(sales_order.name)], [first_run])

	def test_get_run_of_a_run_waiting_for_a_retry_shows_the_order_real_totals(self):
		sales_order = factories.order_with_rule(1, 375000, stock=0, execution_mode="Background")
		run_name = factories.run_of(sales_order.name).name
		engine.process_run(run_name, drain_seconds=0)  # its delivery fails: queued for a retry
		self.assertEqual(frappe.db.get_value("Sales Automation Run", run_name, "status"), "Queued")

		shown = get_run(run=run_name)

		self.assertEqual(shown["status"], "Queued")
		self.assertEqual(
			shown["totals"],
			{"currency": sales_order.currency, "grand_total": 375000.0, "paid": 0.0, "outstanding": 375000.0},
		)
		self.assertEqual(self.completed.of_order(sales_order.name), [])


API = "/api/method/sales_automation.api"


class TestOrderCompletedOverHTTP(AutomationTestCase):
	"""The endpoints over real HTTP: the server queues Frappe's Webhook jobs after its commits, and a
	worker of the bench sends them, as in production."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		subscribe(cls)
		cls.customer = factories.make_customer()
		cls.item_code = factories.make_item(stock_qty=10)
		cls.server, cls.http = factories.serve_site(cls, "_sa_events_http@example.com")  # commits
		frappe.cache.delete_value("webhooks")

	@classmethod
	def tearDownClass(cls):
		frappe.db.rollback()
		frappe.delete_doc("Webhook", cls.webhook.name, force=True)
		frappe.delete_doc("Webhook", cls.completed_webhook.name, force=True)
		frappe.db.commit()
		frappe.cache.delete_value("webhooks")
		cls.receiver.stop()
		cls.completed.stop()
		super().tearDownClass()

	def post(self, method: str, body: dict) -> dict:
		response = self.http.post(f"{self.server.url}{API}.{method}", json=body, timeout=120)
		self.assertEqual(response.status_code, 200, response.text)
		return response.json()["message"]

	def test_each_order_is_completed_once_by_step_endpoints_or_by_the_one_call_and_a_no_op_tells_nothing(
		self,
	):
		by_steps = factories.make_sales_order(
			[{"item_code": self.item_code, "qty": 2, "rate": 60}], customer=self.customer
		)
		frappe.db.commit()
		cash = self.env.cash_mode

		delivered = self.post("deliver", {"sales_order": by_steps.name})
		invoiced = self.post("invoice", {"delivery_note": delivered["name"]})
		paid = self.post("pay", {"sales_invoice": invoiced["name"], "mode_of_payment": cash})
		again = self.post("deliver", {"sales_order": by_steps.name})
		one_call = self.post(
			"run_sales_cycle",
			{
				"order": factories.order_payload(self.customer, self.item_code, qty=1, rate=80),
				"payment": {"mode_of_payment": cash},
			},
		)
		worker = factories.work_off_queue()
		self.assertEqual(worker.returncode, 0, worker.stderr[-2000:])

		self.assertEqual((again["created"], again["run"], again["name"]), (False, None, delivered["name"]))
		step_runs = {delivered["run"], invoiced["run"], paid["run"]}
		ended = self.receiver.wait_for_order(by_steps.name, count=3)
		self.assertEqual(
			{(d["run"], d["trigger"], d["status"]) for d in ended},
			{(run_name, "Step", "Completed") for run_name in step_runs},
		)
		frappe.db.rollback()  # see what the server committed
		self.assertEqual(
			set(frappe.get_all("Sales Automation Run", {"sales_order": by_steps.name}, pluck="name")),
			step_runs,
			"the no-op deliver recorded no run",
		)
		for sales_order_name, completing_run, grand_total in (
			(by_steps.name, paid["run"], 120.0),
			(one_call["sales_order"], one_call["run"], 80.0),
		):
			completed = self.completed.wait_for_order(sales_order_name)
			documents = factories.documents_of(sales_order_name)
			self.assertEqual(len(completed), 1, completed)
			self.assertEqual(completed[0]["run"], completing_run)
			self.assertEqual(
				completed[0]["documents"],
				{
					"delivery_notes": documents["Delivery Note"],
					"sales_invoices": documents["Sales Invoice"],
					"payment_entries": documents["Payment Entry"],
				},
			)
			self.assertEqual(
				(completed[0]["totals"]["grand_total"], completed[0]["totals"]["outstanding"]),
				(grand_total, 0.0),
			)
			self.assertEqual(
				frappe.db.count(
					"Webhook Request Log",
					{"webhook": self.completed_webhook.name, "reference_document": completing_run},
				),
				1,
			)
		self.assertEqual([d["trigger"] for d in self.receiver.of(one_call["run"])], ["API"])

	def test_get_run_over_http_of_a_run_queued_for_a_retry_shows_the_order_grand_total(self):
		sales_order = factories.order_with_rule(1, 375000, stock=0, execution_mode="Background")
		run_name = factories.run_of(sales_order.name).name
		engine.process_run(run_name, drain_seconds=0)  # its delivery fails: queued for a retry, committed

		response = self.http.get(f"{self.server.url}{API}.get_run", params={"run": run_name}, timeout=60)

		self.assertEqual(response.status_code, 200, response.text)
		shown = response.json()["message"]
		self.assertEqual(shown["status"], "Queued")
		self.assertEqual((shown["totals"]["grand_total"], shown["totals"]["outstanding"]), (375000, 375000))
