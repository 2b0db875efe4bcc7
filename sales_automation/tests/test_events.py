"""Outbound events: a standard Frappe Webhook on Sales Automation Run, set up as docs/events.md says,
tells a receiver once each time a run ends, with the run's order, documents, totals and error."""

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import frappe
from frappe.utils import add_to_date, now_datetime

from sales_automation import engine
from sales_automation.tests import factories
from sales_automation.tests.base import AutomationTestCase

END_CONDITION = 'doc.status in ("Completed", "Partially Completed", "Failed", "Cancelled")'


def documented_request_body() -> str:
	"""The JSON Request Body template of docs/events.md, so the page and the test cannot drift apart."""
	page = Path(frappe.get_app_path("sales_automation")).parent / "docs" / "events.md"
	return re.search(r"```jinja\n(.*?)```", page.read_text(), re.DOTALL).group(1)


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

	def wait_for(self, run_name: str, timeout: float = 60) -> list[dict]:
		"""The run's deliveries once there is one (Frappe sends them from a background job), or none
		after `timeout` seconds."""
		deadline = time.monotonic() + timeout
		while not self.of(run_name) and time.monotonic() < deadline:
			time.sleep(0.2)
		return self.of(run_name)


class TestRunEvents(AutomationTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.receiver = Receiver()
		cls.webhook = frappe.get_doc(
			{
				"doctype": "Webhook",
				"name": f"_SA Run Ended {frappe.generate_hash(length=6)}",
				"webhook_doctype": "Sales Automation Run",
				"webhook_docevent": "on_update",
				"condition": END_CONDITION,
				"request_url": cls.receiver.url,
				"request_method": "POST",
				"request_structure": "JSON",
				"webhook_json": documented_request_body(),
				"webhook_headers": [{"key": "Content-Type", "value": "application/json"}],
				"enabled": 1,
			}
		).insert()
		frappe.db.commit()  # the worker process must see the Webhook
		frappe.cache.delete_value("webhooks")

	@classmethod
	def tearDownClass(cls):
		frappe.set_user("Administrator")
		frappe.db.rollback()
		frappe.delete_doc("Webhook", cls.webhook.name, force=True)
		frappe.db.set_single_value("Sales Automation Settings", "max_attempts", 3)
		frappe.db.commit()  # no later test of the site posts to the stopped receiver
		frappe.cache.delete_value("webhooks")
		cls.receiver.stop()
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
