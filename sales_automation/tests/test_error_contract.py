"""One error contract over real HTTP: every refusal of every endpoint is a 4xx with the `error` object,
a missing or wrongly typed argument a 422 naming it whatever the body's content type, ERPNext's own
validation of an order a 422 naming the order's field, a permission error a 403 wherever it is raised,
and what can be checked before any document is made checked first."""

import json

import requests

import frappe
from frappe.utils import add_days, nowdate

from sales_automation.setup.demo import ensure_api_user
from sales_automation.tests.base import IntegrationTestCase
from sales_automation.tests.factories import (
	count_documents,
	make_customer,
	make_item,
	order_payload,
	serve_site,
	test_env,
)

API = "/api/method/sales_automation."
# every operation of docs/openapi.yaml with its required arguments and a value for each
REQUIRED = {
	"api.deliver": {"sales_order": "SAL-ORD-NOPE-1"},
	"api.pay": {"sales_invoice": "ACC-SINV-NOPE-1"},
	"api.invoice": {"sales_order": "SAL-ORD-NOPE-1"},
	"api.run_sales_cycle": {"sales_order": "SAL-ORD-NOPE-1"},
	"api.get_run": {"run": "SA-RUN-NOPE-1"},
	"api.runs.resume_run": {"run": "SA-RUN-NOPE-1"},
	"api.runs.cancel_cycle": {"sales_order": "SAL-ORD-NOPE-1"},
	"api.runs.bulk_status": {"runs": ["SA-RUN-NOPE-1"]},
	"simulator.simulate_rule": {"rule": "No Such Rule"},
	"simulator.preview_order": {"rule": "No Such Rule", "sales_order": "SAL-ORD-NOPE-1"},
}
# a required argument the endpoint names itself when neither of two is given
EITHER = {"api.pay": "sales_invoice", "api.invoice": "sales_order", "api.run_sales_cycle": "order"}


class TestErrorContract(IntegrationTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.env = test_env()
		cls.customer = make_customer()
		cls.item_code = make_item(stock_qty=50)
		cls.server, cls.http = serve_site(cls, "_sa_contract_manager@example.com", workers=1, threads=4)

	def call(self, method: str, body=None, verb: str = "POST", session=None, **kwargs):
		session = session or self.http
		url = self.server.url + API + method
		if verb == "GET":
			return session.get(url, params=body, timeout=120, **kwargs)
		return session.post(url, timeout=120, **({"json": body} if body is not None else {}), **kwargs)

	def counts(self):
		frappe.db.rollback()
		return count_documents()

	def assertRefused(self, response, status: int, field: str | None = None):
		self.assertEqual(response.status_code, status, response.text[:800])
		body = response.json()
		self.assertIn("error", body, response.text[:800])
		self.assertTrue(body["error"]["type"] and body["error"]["message"], body["error"])
		self.assertNotIn("exc", body)
		if field is not None:
			self.assertEqual(body["error"]["field"], field, body["error"])
		return body["error"]

	def test_a_missing_required_argument_is_a_422_naming_it_in_any_content_type(self):
		for method, arguments in REQUIRED.items():
			verb = "GET" if method == "api.get_run" else "POST"
			for name in arguments:
				rest = {key: value for key, value in arguments.items() if key != name}
				expected = EITHER.get(method, name)
				with self.subTest(method=method, missing=name, body="json"):
					if verb == "GET":
						response = self.call(method, rest, verb="GET")
					else:
						response = self.call(method, rest)
					self.assertRefused(response, 422, expected)
				if verb == "GET":
					continue
				with self.subTest(method=method, missing=name, body="form"):
					form = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in rest.items()}
					self.assertRefused(self.call(method, data=form), 422, expected)
				with self.subTest(method=method, missing=name, body="text/plain"):
					response = self.call(
						method, data=json.dumps(arguments), headers={"Content-Type": "text/plain"}
					)
					error = self.assertRefused(response, 422)
					self.assertIn("Content-Type", error["message"])

	def test_wrongly_typed_arguments_are_a_422_naming_them(self):
		cases = [
			("api.deliver", {"sales_order": ["SAL-ORD-1"]}, "sales_order"),
			("api.deliver", {"sales_order": "SAL-ORD-1", "submit": "perhaps"}, "submit"),
			("api.pay", {"sales_invoice": "ACC-SINV-1", "amount": "lots"}, "amount"),
			("api.pay", {"sales_invoice": "ACC-SINV-1", "amount": "inf"}, "amount"),
			("api.run_sales_cycle", {"sales_order": "SAL-ORD-1", "dry_run": "maybe"}, "dry_run"),
			("api.run_sales_cycle", {"order": 12}, "order"),
			("api.runs.run_bulk", {"sales_orders": [{"name": "SAL-ORD-1"}]}, "sales_orders[0]"),
			("api.runs.run_bulk", {"filters": [{"a": []}, True]}, "filters[0]"),
			("api.runs.bulk_status", {"runs": [7]}, "runs[0]"),
			("simulator.simulate_rule", {"rule": "x", "limit": "many"}, "limit"),
		]
		for method, body, field in cases:
			with self.subTest(method=method, field=field):
				self.assertRefused(self.call(method, body), 422, field)

	def test_steps_are_checked_item_by_item_and_an_impossible_plan_is_refused(self):
		before = self.counts()
		payload = order_payload(self.customer, self.item_code, qty=1, rate=10)
		for steps, field in (
			([{}], "steps[0]"),
			(["delivery_note", "ship_it"], "steps[1]"),
			(["delivery_note", "payment_entry"], "steps"),
		):
			with self.subTest(steps=steps):
				response = self.call("api.run_sales_cycle", {"order": payload, "steps": steps})
				self.assertRefused(response, 422, field)
		self.assertEqual(self.counts(), before)

	def test_a_payment_above_what_is_owed_is_refused_before_any_document(self):
		before = self.counts()
		payload = order_payload(self.customer, self.item_code, qty=2, rate=10)
		response = self.call(
			"api.run_sales_cycle",
			{"order": payload, "payment": {"mode_of_payment": self.env.cash_mode, "amount": 25}},
		)
		error = self.assertRefused(response, 422, "payment.amount")
		self.assertIn("20", error["message"])
		self.assertEqual(self.counts(), before)

	def test_erpnexts_own_validation_errors_are_a_422_naming_the_orders_field(self):
		other_warehouse = frappe.db.get_value(
			"Warehouse", {"company": ["!=", self.env.company], "is_group": 0}, "name"
		)
		self.assertTrue(other_warehouse, "the test site has a second company's warehouse")
		po_no = f"PO-{frappe.generate_hash(length=8)}"
		first = self.call(
			"api.run_sales_cycle",
			{
				"order": order_payload(self.customer, self.item_code, rate=10, po_no=po_no),
				"steps": ["delivery_note"],
			},
		)
		self.assertEqual(first.status_code, 200, first.text[:800])
		frappe.db.set_single_value("Selling Settings", "allow_against_multiple_purchase_orders", 0)
		frappe.db.commit()

		def payload(**changes):
			body = order_payload(self.customer, self.item_code, rate=10)
			row = body["items"][0]
			for key, value in changes.items():
				if key.startswith("item_"):
					row[key.removeprefix("item_")] = value
				else:
					body[key] = value
			return body

		cases = [
			(
				payload(transaction_date=nowdate(), delivery_date=add_days(nowdate(), -3)),
				"order.delivery_date",
			),
			(payload(item_warehouse=other_warehouse), "order.items[0].warehouse"),
			(payload(item_qty=1.5), "order.items[0].qty"),
			(payload(po_no=po_no), "order.po_no"),
		]
		before = self.counts()
		for body, field in cases:
			with self.subTest(field=field):
				response = self.call("api.run_sales_cycle", {"order": body})
				error = self.assertRefused(response, 422, field)
				self.assertEqual(error["type"], "InvalidRequestError")
		self.assertEqual(self.counts(), before)

	def test_a_line_without_a_price_is_refused_and_a_free_line_says_so(self):
		unpriced = make_item(stock_qty=5)  # no Item Price in any price list
		frappe.db.commit()  # the server sees only committed data
		before = self.counts()
		body = order_payload(self.customer, unpriced)
		del body["items"][0]["rate"]
		error = self.assertRefused(self.call("api.run_sales_cycle", {"order": body}), 422)
		self.assertEqual(error["field"], "order.items[0].rate", error)
		self.assertIn("no price", error["message"])
		self.assertEqual(self.counts(), before)
		body["items"][0]["rate"] = 0
		free = self.call("api.run_sales_cycle", {"order": body, "steps": ["delivery_note"]})
		self.assertEqual(free.status_code, 200, free.text[:800])

	def test_a_sales_user_cancelling_a_cycle_gets_403_and_nothing_is_cancelled(self):
		response = self.call(
			"api.run_sales_cycle",
			{
				"order": order_payload(self.customer, self.item_code, rate=10),
				"payment": {"mode_of_payment": self.env.cash_mode},
			},
		)
		self.assertEqual(response.status_code, 200, response.text[:800])
		result = response.json()["message"]
		key, secret = ensure_api_user("_sa_contract_sales_user@example.com", ["Sales User"])
		frappe.db.commit()
		# a Sales User may cancel the Delivery Note and the invoice, not the Payment Entry
		self.assertFalse(
			frappe.has_permission("Payment Entry", "cancel", user="_sa_contract_sales_user@example.com")
		)
		refused = self.call(
			"api.runs.cancel_cycle",
			{"sales_order": result["sales_order"]},
			session=self.server.session(key, secret),
		)
		self.assertRefused(refused, 403)
		frappe.db.rollback()
		for doctype, name in (
			("Delivery Note", result["delivery_note"]),
			("Sales Invoice", result["sales_invoice"]),
			("Payment Entry", result["payment_entry"]),
		):
			self.assertEqual(frappe.db.get_value(doctype, name, "docstatus"), 1, doctype)

	def test_guests_and_bad_tokens_get_the_error_object(self):
		headers = {"X-Frappe-Site-Name": self.server.site, "Accept": "application/json"}
		for method in REQUIRED:
			with self.subTest(method=method, who="guest"):
				response = requests.post(
					self.server.url + API + method, json=REQUIRED[method], headers=headers, timeout=60
				)
				self.assertRefused(response, 403)
		response = requests.post(
			self.server.url + API + "api.deliver",
			json=REQUIRED["api.deliver"],
			headers={**headers, "Authorization": "token nope:nope"},
			timeout=60,
		)
		self.assertIn(response.status_code, (401, 403), response.text[:500])
		self.assertIn("error", response.json())

	def test_a_method_called_with_the_wrong_verb_gets_the_error_object(self):
		self.assertRefused(self.call("api.get_run", {"run": "x"}), 403)
