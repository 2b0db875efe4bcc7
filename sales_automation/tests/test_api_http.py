"""The one-call endpoint over real HTTP, against a server the harness starts."""

import json
from concurrent.futures import ThreadPoolExecutor

import requests

import frappe

from sales_automation.setup.demo import ensure_api_user
from sales_automation.tests.base import IntegrationTestCase
from sales_automation.tests.factories import (
	count_documents,
	gl_totals,
	make_customer,
	make_item,
	make_sales_order,
	order_payload,
	serve_site,
	test_env,
)

ENDPOINT = "/api/method/sales_automation.api.run_sales_cycle"


class TestRunSalesCycleOverHTTP(IntegrationTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.env = test_env()
		cls.customer = make_customer()
		cls.item_code = make_item(stock_qty=200)
		cls.server, cls.http = serve_site(cls, "_sa_http_integration@example.com", workers=2, threads=6)

	def key(self, label: str) -> str:
		keys = self.__dict__.setdefault("_keys", {})
		return keys.setdefault(label, f"{label}-{frappe.generate_hash(length=8)}")

	def post(self, body, headers=None, session=None):
		return (session or self.http).post(
			self.server.url + ENDPOINT, json=body, headers=headers or {}, timeout=120
		)

	def payload(self, **fields):
		return order_payload(self.customer, self.item_code, **fields)

	def counts(self):
		frappe.db.rollback()  # a fresh snapshot: see what the server committed
		return count_documents()

	def test_payload_order_over_http_delivers_bills_and_pays(self):
		response = self.post(
			{"order": self.payload(qty=3, rate=20), "payment": {"mode_of_payment": self.env.cash_mode}}
		)
		self.assertEqual(response.status_code, 200, response.text)
		result = response.json()["message"]
		frappe.db.rollback()
		self.assertEqual(frappe.db.get_value("Sales Order", result["sales_order"], "status"), "Completed")
		self.assertEqual(frappe.db.get_value("Sales Invoice", result["sales_invoice"], "status"), "Paid")
		debit, credit = gl_totals([result["delivery_note"], result["sales_invoice"], result["payment_entry"]])
		self.assertEqual(debit, credit)
		self.assertEqual(
			result["totals"], {"currency": "USD", "grand_total": 60, "paid": 60, "outstanding": 0}
		)

	def test_a_form_post_with_the_order_as_json_text_runs_the_cycle(self):
		# how Frappe's desk (frappe.call) and many HTTP clients send it: a form, objects as JSON text
		response = self.http.post(
			self.server.url + ENDPOINT,
			data={
				"order": json.dumps(self.payload(qty=1, rate=12)),
				"payment": json.dumps({"mode_of_payment": self.env.cash_mode}),
			},
			timeout=120,
		)
		self.assertEqual(response.status_code, 200, response.text)
		result = response.json()["message"]
		frappe.db.rollback()
		self.assertEqual(frappe.db.get_value("Sales Invoice", result["sales_invoice"], "status"), "Paid")
		self.assertEqual(
			frappe.db.get_value("Payment Entry", result["payment_entry"], "mode_of_payment"),
			self.env.cash_mode,
		)

	def test_existing_order_name_over_http(self):
		sales_order = make_sales_order(
			[{"item_code": self.item_code, "qty": 1, "rate": 15}], customer=self.customer
		)
		frappe.db.commit()
		response = self.post({"sales_order": sales_order.name})
		self.assertEqual(response.status_code, 200, response.text)
		frappe.db.rollback()
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "status"), "Completed")

	def test_idempotency_key_header_replays_and_a_changed_payload_gets_422(self):
		body = {"order": self.payload(), "payment": {"mode_of_payment": self.env.cash_mode}}
		first = self.post(body, headers={"Idempotency-Key": self.key("http-key-1")})
		self.assertEqual(first.status_code, 200, first.text)
		before = self.counts()
		again = self.post(body, headers={"Idempotency-Key": self.key("http-key-1")})
		self.assertEqual(again.status_code, 200, again.text)
		self.assertTrue(again.json()["message"]["replayed"])
		self.assertEqual(again.json()["message"]["sales_invoice"], first.json()["message"]["sales_invoice"])
		changed = self.post(
			{**body, "order": self.payload(qty=2)}, headers={"Idempotency-Key": self.key("http-key-1")}
		)
		self.assertEqual(changed.status_code, 422, changed.text)
		self.assertEqual(self.counts(), before)

	def test_ten_parallel_identical_requests_make_exactly_one_cycle(self):
		body = {"order": self.payload(qty=1, rate=11), "payment": {"mode_of_payment": self.env.cash_mode}}
		before = self.counts()
		with ThreadPoolExecutor(max_workers=10) as pool:
			responses = list(
				pool.map(
					lambda _: self.post(body, headers={"Idempotency-Key": self.key("parallel-1")}), range(10)
				)
			)
		codes = sorted(response.status_code for response in responses)
		self.assertTrue(set(codes) <= {200, 409}, codes)
		answers = [response.json()["message"] for response in responses if response.status_code == 200]
		self.assertTrue(answers)
		names = {
			(a["sales_order"], a["delivery_note"], a["sales_invoice"], a["payment_entry"]) for a in answers
		}
		self.assertEqual(len(names), 1)
		after = self.counts()
		for doctype in ("Sales Order", "Delivery Note", "Sales Invoice", "Payment Entry"):
			self.assertEqual(after[doctype] - before[doctype], 1, doctype)
		# once the first call is done, every retry is a replay with the same names
		replay = self.post(body, headers={"Idempotency-Key": self.key("parallel-1")}).json()["message"]
		self.assertTrue(replay["replayed"])
		self.assertEqual(replay["payment_entry"], answers[0]["payment_entry"])

	def test_guest_is_refused(self):
		response = requests.post(
			self.server.url + ENDPOINT,
			json={"sales_order": "x"},
			headers={"X-Frappe-Site-Name": self.server.site},
			timeout=60,
		)
		self.assertEqual(response.status_code, 403, response.text)

	def test_user_without_payment_rights_gets_403_and_nothing_is_created(self):
		key, secret = ensure_api_user("_sa_http_no_payments@example.com", ["Sales User", "Stock User"])
		frappe.db.commit()
		before = self.counts()
		response = self.post({"order": self.payload()}, session=self.server.session(key, secret))
		self.assertEqual(response.status_code, 403, response.text)
		self.assertFalse(
			frappe.has_permission("Payment Entry", "create", user="_sa_http_no_payments@example.com")
		)
		first_refused = next(
			doctype
			for doctype in ("Delivery Note", "Sales Invoice", "Payment Entry")
			if not frappe.has_permission(doctype, "create", user="_sa_http_no_payments@example.com")
		)
		self.assertEqual(response.json()["error"]["step"], frappe.scrub(first_refused))
		self.assertEqual(self.counts(), before)

	def test_malformed_payloads_get_a_4xx_naming_the_field_and_create_nothing(self):
		cancelled = make_sales_order(
			[{"item_code": self.item_code, "qty": 1, "rate": 1}], customer=self.customer
		)
		cancelled.cancel()
		closed = make_sales_order(
			[{"item_code": self.item_code, "qty": 1, "rate": 1}], customer=self.customer
		)
		closed.update_status("Closed")
		frappe.db.commit()
		item = {"item_code": self.item_code, "qty": 1, "rate": 10}

		def order(**changes):
			payload = self.payload()
			payload.update(changes)
			return {"order": {key: value for key, value in payload.items() if value is not None}}

		def with_item(**changes):
			return order(items=[{**item, **changes}])

		cases = [
			({}, "order"),
			({"order": self.payload(), "sales_order": "x"}, "order"),
			({"order": []}, "order"),
			({"order": "not an object"}, "order"),
			(order(customer=None), "order.customer"),
			(order(customer="No Such Customer"), "order.customer"),
			(order(customer=12), "order.customer"),
			(order(company="No Such Company"), "order.company"),
			(order(currency="XXX"), "order.currency"),
			(order(unknown_field=1), "order.unknown_field"),
			(order(name="SO-FORGED"), "order.name"),
			(order(docstatus=2), "order.docstatus"),
			(order(delivery_date="not-a-date"), "order.delivery_date"),
			(order(items=None), "order.items"),
			(order(items=[]), "order.items"),
			(order(items="abc"), "order.items"),
			(order(items=["abc"]), "order.items[0]"),
			(with_item(item_code=None), "order.items[0].item_code"),
			(with_item(item_code="NO-SUCH-ITEM"), "order.items[0].item_code"),
			(with_item(qty=0), "order.items[0].qty"),
			(with_item(qty=-3), "order.items[0].qty"),
			(with_item(qty="five"), "order.items[0].qty"),
			(with_item(qty=True), "order.items[0].qty"),
			(with_item(rate=-1), "order.items[0].rate"),
			(with_item(warehouse="No Such Warehouse"), "order.items[0].warehouse"),
			(with_item(warehouse=f"All Warehouses - {self.env.abbr}"), "order.items[0].warehouse"),
			(with_item(bogus=1), "order.items[0].bogus"),
			(with_item(uom="No Such UOM"), "order.items[0].uom"),
			({"sales_order": "SAL-ORD-NOPE-1"}, "sales_order"),
			({"sales_order": cancelled.name}, "sales_order"),
			({"sales_order": closed.name}, "sales_order"),
			({**order(), "rule": "No Such Rule"}, "rule"),
			({**order(), "steps": ["ship_it"]}, "steps"),
			({**order(), "steps": []}, "steps"),
			({**order(), "payment": {"amount": -5}}, "payment.amount"),
			({**order(), "payment": {"amount": "lots"}}, "payment.amount"),
			({**order(), "payment": {"tip": 1}}, "payment.tip"),
			({**order(), "payment": {"mode_of_payment": "Barter"}}, "payment.mode_of_payment"),
			({**order(), "payment": {"reference_date": "31/12/2026"}}, "payment.reference_date"),
			({**order(), "payment": "cash"}, "payment"),
			({**order(), "steps": "delivery_note"}, "steps"),
		]
		self.assertGreaterEqual(len(cases), 30)
		before = self.counts()
		for body, field in cases:
			with self.subTest(field=field, body=body):
				response = self.post(body)
				self.assertTrue(
					400 <= response.status_code < 500, (response.status_code, response.text[:500])
				)
				payload = response.json()
				named = (payload.get("error") or {}).get("field")
				self.assertTrue(named == field or field in response.text, (field, response.text[:500]))
				if "error" in payload:  # the app's own answer: no traceback of the server's code paths
					self.assertNotIn("exc", payload)
					self.assertNotIn("exception", payload)
		self.assertEqual(self.counts(), before)
