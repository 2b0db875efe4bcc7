"""The asynchronous one call over real HTTP: 202 at once, the run through a real worker, get_run in
every state of a run, idempotent repeats, and what is refused."""

import frappe

from sales_automation.tests import factories
from sales_automation.tests.base import IntegrationTestCase

ASYNC_USER = "_sa_async_integration@example.com"
CYCLE = "/api/method/sales_automation.api.run_sales_cycle"
GET_RUN = "/api/method/sales_automation.api.get_run"
# the synchronous call's answer; get_run answers these and more
CYCLE_ANSWER_KEYS = {
	"status",
	"sales_order",
	"delivery_note",
	"sales_invoice",
	"payment_entry",
	"run",
	"rule",
	"match_reason",
	"totals",
	"left_open",
	"replayed",
}


class TestAsynchronousCall(IntegrationTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.env = factories.test_env()
		cls.customer = factories.make_customer()
		cls.item_code = factories.make_item(stock_qty=500)
		cls.server, cls.http = factories.serve_site(cls, ASYNC_USER, workers=2, threads=4)

	def post(self, body, headers=None):
		return self.http.post(self.server.url + CYCLE, json=body, headers=headers or {}, timeout=120)

	def get_run(self, run):
		response = self.http.get(self.server.url + GET_RUN, params={"run": run}, timeout=60)
		self.assertEqual(response.status_code, 200, response.text)
		return response.json()["message"]

	def paid_order(self, **fields):
		return {
			"order": factories.order_payload(self.customer, self.item_code, **fields),
			"payment": {"mode_of_payment": self.env.cash_mode},
		}

	def test_202_at_once_then_a_real_worker_completes_the_run(self):
		before = factories.count_documents()
		response = self.post({**self.paid_order(qty=2, rate=30), "async": True})

		self.assertEqual(response.status_code, 202, response.text)
		accepted = response.json()["message"]
		self.assertEqual(accepted["status"], "Queued")
		self.assertEqual(
			accepted["status_url"], f"/api/method/sales_automation.api.get_run?run={accepted['run']}"
		)
		self.assertEqual(response.headers["Location"], accepted["status_url"])
		frappe.db.rollback()
		# the order is made and submitted in the call; nothing of the cycle yet
		self.assertEqual(frappe.db.get_value("Sales Order", accepted["sales_order"], "docstatus"), 1)
		self.assertEqual(
			frappe.db.get_value("Sales Order", accepted["sales_order"], "status"), "To Deliver and Bill"
		)
		self.assertEqual(
			[len(names) for names in factories.documents_of(accepted["sales_order"]).values()], [0, 0, 0]
		)
		queued = self.get_run(accepted["run"])
		self.assertEqual((queued["status"], queued["step"]), ("Queued", "delivery_note"))
		self.assertEqual([row["status"] for row in queued["steps"]], ["Pending"] * 3)

		worker = factories.work_off_queue()
		self.assertEqual(worker.returncode, 0, worker.stderr[-2000:])
		self.assertEqual(factories.wait_for_run_to_end(accepted["run"]), "Completed")

		done = self.get_run(accepted["run"])
		self.assertLessEqual(CYCLE_ANSWER_KEYS, set(done))
		self.assertEqual((done["status"], done["step"], done["error"]), ("Completed", None, None))
		self.assertEqual(done["totals"], {"currency": "USD", "grand_total": 60, "paid": 60, "outstanding": 0})
		documents = factories.documents_of(accepted["sales_order"])
		self.assertEqual(
			[done["delivery_note"], done["sales_invoice"], done["payment_entry"]],
			[documents["Delivery Note"][0], documents["Sales Invoice"][0], documents["Payment Entry"][0]],
		)
		after = factories.count_documents()
		made = ("Sales Order", "Delivery Note", "Sales Invoice", "Payment Entry")
		self.assertEqual([after[d] - before[d] for d in made], [1, 1, 1, 1])
		self.assertEqual(frappe.db.get_value("Sales Order", accepted["sales_order"], "status"), "Completed")
		debit, credit = factories.gl_totals(
			[done["delivery_note"], done["sales_invoice"], done["payment_entry"]]
		)
		self.assertEqual(debit, credit)
		self.assertEqual(frappe.db.get_value("Payment Entry", done["payment_entry"], "owner"), ASYNC_USER)

	def test_prefer_respond_async_for_an_existing_order(self):
		sales_order = factories.make_sales_order(
			[{"item_code": self.item_code, "qty": 1, "rate": 40}], customer=self.customer, automate=False
		)
		frappe.db.commit()
		response = self.post(
			{"sales_order": sales_order.name, "payment": {"mode_of_payment": self.env.cash_mode}},
			headers={"Prefer": "respond-async, wait=5"},
		)
		self.assertEqual(response.status_code, 202, response.text)
		run = response.json()["message"]["run"]
		factories.work_off_queue()
		self.assertEqual(factories.wait_for_run_to_end(run), "Completed")
		self.assertEqual(
			[len(names) for names in factories.documents_of(sales_order.name).values()], [1, 1, 1]
		)

	def test_an_idempotent_async_repeat_returns_the_same_run(self):
		body = {**self.paid_order(qty=1, rate=25), "async": True}
		headers = {"Idempotency-Key": f"async-{frappe.generate_hash(length=8)}"}
		before = factories.count_documents()
		first = self.post(body, headers)
		second = self.post(body, headers)

		self.assertEqual((first.status_code, second.status_code), (202, 202), second.text)
		first, second = first.json()["message"], second.json()["message"]
		self.assertEqual((second["run"], second["sales_order"]), (first["run"], first["sales_order"]))
		self.assertEqual((first["replayed"], second["replayed"]), (False, True))
		frappe.db.rollback()
		self.assertEqual(factories.count_documents()["Sales Order"], before["Sales Order"] + 1)
		self.assertEqual(frappe.db.count("Sales Automation Run", {"sales_order": first["sales_order"]}), 1)
		# the same key for the synchronous call is another request
		synchronous = self.post({k: v for k, v in body.items() if k != "async"}, headers)
		self.assertEqual(synchronous.status_code, 422, synchronous.text)

		factories.work_off_queue()
		self.assertEqual(factories.wait_for_run_to_end(first["run"]), "Completed")
		# a repeat after the run ended: still the same run, as it stands now
		third = self.post(body, headers)
		self.assertEqual(third.status_code, 202, third.text)
		self.assertEqual(
			(third.json()["message"]["run"], third.json()["message"]["status"]), (first["run"], "Completed")
		)
		self.assertEqual(
			[len(names) for names in factories.documents_of(first["sales_order"]).values()], [1, 1, 1]
		)

	def test_refusals_name_the_field_and_make_nothing(self):
		before = factories.count_documents()
		for body, field in (
			({**self.paid_order(), "async": True, "dry_run": True}, "async"),
			({**self.paid_order(), "async": "soon"}, "async"),
			({"async": True, "sales_order": "SAL-ORD-NONE-0000"}, "sales_order"),
		):
			response = self.post(body)
			self.assertEqual(response.status_code, 422 if field == "async" else 404, response.text)
			self.assertEqual(response.json()["error"]["field"], field)
		response = self.http.get(self.server.url + GET_RUN, params={"run": "no-such-run"}, timeout=60)
		self.assertEqual((response.status_code, response.json()["error"]["field"]), (422, "run"))
		frappe.db.rollback()
		self.assertEqual(factories.count_documents(), before)


class TestGetRun(IntegrationTestCase):
	"""get_run for a run in each state, in process (the HTTP path is the test above)."""

	def setUp(self):
		self.env = factories.test_env()
		self.customer = factories.make_customer()

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.set_single_value("Sales Automation Settings", "max_attempts", 3)

	def run_for(self, stock: float, **rule_fields):
		from sales_automation.api import get_run

		factories.make_rule(self.customer, execution_mode="Background", **rule_fields)
		item_code = factories.make_item(stock_qty=stock)
		sales_order = factories.make_sales_order(
			[{"item_code": item_code, "qty": 4, "rate": 10}], customer=self.customer
		)
		run = frappe.get_doc("Sales Automation Run", {"sales_order": sales_order.name})
		return run, lambda: get_run(run.name)

	def execute(self, run):
		from sales_automation import engine

		run.reload()
		engine.execute(run, engine.Mode.WITH_RETRIES)

	def test_queued_running_and_completed(self):
		run, get_run = self.run_for(stock=10)
		self.assertEqual((get_run()["status"], get_run()["step"]), ("Queued", "delivery_note"))
		# as a worker leaves it between two steps
		run.steps[0].status = "Completed"
		run.steps[0].db_update()
		frappe.db.set_value(run.doctype, run.name, "status", "Running")
		running = get_run()
		self.assertEqual((running["status"], running["step"]), ("Running", "sales_invoice"))
		self.assertEqual([row["status"] for row in running["steps"]], ["Completed", "Pending", "Pending"])
		run.steps[0].status = "Pending"
		run.steps[0].db_update()
		self.execute(run)
		completed = get_run()
		self.assertEqual(
			(completed["status"], completed["step"], completed["left_open"]), ("Completed", None, [])
		)
		self.assertEqual(completed["totals"]["outstanding"], 0)

	def test_partially_completed_lists_what_is_left(self):
		run, get_run = self.run_for(stock=3, shortage_policy="Deliver Available")
		self.execute(run)
		partial = get_run()
		self.assertEqual(partial["status"], "Partially Completed")
		self.assertIn("delivery", [item["what"] for item in partial["left_open"]])
		self.assertTrue(all(item["why"] for item in partial["left_open"]))

	def test_failed_carries_the_error_of_its_step(self):
		frappe.db.set_single_value("Sales Automation Settings", "max_attempts", 1)
		run, get_run = self.run_for(stock=0)
		self.execute(run)
		failed = get_run()
		self.assertEqual(failed["status"], "Failed")
		self.assertEqual(failed["error"]["step"], "delivery_note")
		self.assertIn(failed["error"]["message"], frappe.db.get_value(run.doctype, run.name, "error"))
		self.assertEqual(failed["delivery_note"], None)

	def test_cancelled_and_permissions(self):
		from sales_automation import engine

		run, get_run = self.run_for(stock=10)
		self.execute(run)
		engine.cancel_cycle(run.sales_order)
		self.assertEqual(get_run()["status"], "Cancelled")
		frappe.set_user("Guest")
		with self.assertRaises(frappe.PermissionError):
			get_run()
