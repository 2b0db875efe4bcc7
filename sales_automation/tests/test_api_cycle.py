"""The one-call endpoints, in-process: atomicity, idempotency, dry run, permissions, step endpoints."""

import frappe
from frappe.utils import flt

from sales_automation.api import deliver, invoice, pay, run_sales_cycle
from sales_automation.exceptions import (
	IdempotencyKeyReusedError,
	InvalidRequestError,
	InvalidStateError,
	StepFailedError,
)
from sales_automation.setup.demo import SALES_ROLES, ensure_api_user, ensure_mode_of_payment
from sales_automation.tests.base import EndpointTestCase
from sales_automation.tests.factories import (
	COMPANY,
	count_documents,
	documents_of,
	frozen_account,
	gl_totals,
	make_customer,
	make_item,
	make_sales_order,
	order_payload,
)


class APITestCase(EndpointTestCase):
	def fixtures(self, stock_qty=10, **customer_fields):
		customer = make_customer(**customer_fields)
		item_code = make_item(stock_qty=stock_qty)
		frappe.db.commit()
		return customer, item_code

	def key(self, label: str) -> str:
		"""A key unique to this test run (keys live on in the site's request log)."""
		keys = self.__dict__.setdefault("_keys", {})
		return keys.setdefault(label, f"{label}-{frappe.generate_hash(length=8)}")

	def cash(self):
		return {"mode_of_payment": self.env.cash_mode}

	def assert_paid_cycle(self, result):
		self.assertEqual(result["status"], "Completed")
		self.assertEqual(frappe.db.get_value("Sales Order", result["sales_order"], "status"), "Completed")
		self.assertEqual(frappe.db.get_value("Delivery Note", result["delivery_note"], "docstatus"), 1)
		self.assertEqual(frappe.db.get_value("Sales Invoice", result["sales_invoice"], "status"), "Paid")
		self.assertEqual(frappe.db.get_value("Payment Entry", result["payment_entry"], "docstatus"), 1)
		debit, credit = gl_totals([result["delivery_note"], result["sales_invoice"], result["payment_entry"]])
		self.assertGreater(debit, 0)
		self.assertEqual(debit, credit)
		self.assertEqual(result["totals"]["outstanding"], 0)
		self.assertEqual(result["totals"]["paid"], result["totals"]["grand_total"])


class TestRunSalesCycle(APITestCase):
	def test_payload_order_runs_the_whole_cycle_in_one_call(self):
		customer, item_code = self.fixtures()
		result = run_sales_cycle(
			order=order_payload(customer, item_code, qty=2, rate=60), payment=self.cash()
		)
		self.assert_paid_cycle(result)
		self.assertEqual(result["totals"]["grand_total"], 120)
		self.assertFalse(result["replayed"])
		self.assertIsNone(result["rule"])  # no rule matched: the documented default ran
		run = frappe.get_doc("Sales Automation Run", result["run"])
		self.assertEqual(run.trigger, "API")
		self.assertIn("default", run.match_reason)

	def test_existing_draft_order_is_submitted_and_cycled(self):
		customer, item_code = self.fixtures()
		draft = make_sales_order(
			[{"item_code": item_code, "qty": 1, "rate": 70}], customer=customer, submit=False
		)
		frappe.db.commit()
		result = run_sales_cycle(sales_order=draft.name, payment=self.cash())
		self.assertEqual(result["sales_order"], draft.name)
		self.assert_paid_cycle(result)

	def test_submitted_order_continues_from_where_it_stands(self):
		from erpnext.selling.doctype.sales_order.sales_order import make_delivery_note

		customer, item_code = self.fixtures()
		sales_order = make_sales_order([{"item_code": item_code, "qty": 3, "rate": 10}], customer=customer)
		delivery_note = make_delivery_note(sales_order.name)
		delivery_note.insert()
		delivery_note.submit()
		frappe.db.commit()

		result = run_sales_cycle(sales_order=sales_order.name, payment=self.cash())

		self.assertEqual(result["delivery_note"], delivery_note.name)
		self.assertEqual(documents_of(sales_order.name)["Delivery Note"], [delivery_note.name])
		self.assert_paid_cycle(result)

	def test_steps_subset_and_partial_payment(self):
		customer, item_code = self.fixtures()
		result = run_sales_cycle(
			order=order_payload(customer, item_code, qty=1, rate=100),
			steps=["delivery_note", "sales_invoice", "payment_entry"],
			payment={"mode_of_payment": self.env.cash_mode, "amount": 40, "reference_no": "EXT-1"},
		)
		self.assertEqual(
			frappe.db.get_value("Sales Invoice", result["sales_invoice"], "outstanding_amount"), 60
		)
		self.assertEqual(
			frappe.db.get_value("Sales Invoice", result["sales_invoice"], "status"), "Partly Paid"
		)
		self.assertEqual(
			frappe.db.get_value("Payment Entry", result["payment_entry"], "reference_no"), "EXT-1"
		)
		self.assertEqual(result["totals"]["paid"], 40)
		self.assertEqual(result["totals"]["outstanding"], 60)

		only_delivery = run_sales_cycle(order=order_payload(customer, item_code), steps=["delivery_note"])
		self.assertTrue(only_delivery["delivery_note"])
		self.assertIsNone(only_delivery["sales_invoice"])
		self.assertEqual(documents_of(only_delivery["sales_order"])["Sales Invoice"], [])

	def test_a_failure_at_any_step_leaves_no_document_of_any_kind(self):
		customer, item_code = self.fixtures(stock_qty=5)
		short_item = make_item(stock_qty=0)
		frozen_customer = make_customer(
			accounts=[
				{
					"company": COMPANY,
					"account": frozen_account("_SA Frozen Debtors", "Accounts Receivable", "Receivable"),
				}
			]
		)
		frozen_mode = ensure_mode_of_payment(
			"_SA Frozen Cash", COMPANY, frozen_account("_SA Frozen Cash", "Cash In Hand", "Cash"), "Cash"
		)
		frappe.db.commit()
		cases = {
			"delivery_note": (order_payload(customer, short_item), self.cash()),
			"sales_invoice": (order_payload(frozen_customer, item_code), self.cash()),
			"payment_entry": (order_payload(customer, item_code), {"mode_of_payment": frozen_mode}),
		}
		for step, (order, payment) in cases.items():
			with self.subTest(step=step):
				before = count_documents()
				with self.assertRaises(StepFailedError) as caught:
					run_sales_cycle(order=order, payment=payment)
				self.assertEqual(caught.exception.step, step)
				self.assertEqual(frappe.local.response["error"]["step"], step)
				self.assertEqual(count_documents(), before)

	def test_cancelled_closed_on_hold_and_finished_orders_are_refused(self):
		customer, item_code = self.fixtures()
		cancelled = make_sales_order([{"item_code": item_code, "qty": 1, "rate": 5}], customer=customer)
		cancelled.cancel()
		closed = make_sales_order([{"item_code": item_code, "qty": 1, "rate": 5}], customer=customer)
		closed.update_status("Closed")
		on_hold = make_sales_order([{"item_code": item_code, "qty": 1, "rate": 5}], customer=customer)
		on_hold.update_status("On Hold")
		frappe.db.commit()
		done = run_sales_cycle(order=order_payload(customer, item_code), payment=self.cash())["sales_order"]
		frappe.db.commit()
		for name, state in (
			(cancelled.name, "cancelled"),
			(closed.name, "Closed"),
			(on_hold.name, "On Hold"),
			(done, "already"),
		):
			with self.subTest(state=state):
				with self.assertRaises(InvalidStateError) as caught:
					run_sales_cycle(sales_order=name)
				self.assertIn(state, str(caught.exception))


class TestIdempotency(APITestCase):
	def test_same_key_replays_the_stored_answer_and_creates_nothing(self):
		customer, item_code = self.fixtures()
		payload = order_payload(customer, item_code)
		first = run_sales_cycle(order=payload, payment=self.cash(), idempotency_key=self.key("order-42"))
		frappe.db.commit()
		before = count_documents()
		again = run_sales_cycle(order=payload, payment=self.cash(), idempotency_key=self.key("order-42"))
		self.assertTrue(again["replayed"])
		self.assertEqual({**again, "replayed": False}, first)
		self.assertEqual(count_documents(), before)

	def test_same_key_with_a_different_payload_is_refused(self):
		customer, item_code = self.fixtures()
		run_sales_cycle(
			order=order_payload(customer, item_code), payment=self.cash(), idempotency_key=self.key("k-422")
		)
		frappe.db.commit()
		before = count_documents()
		with self.assertRaises(IdempotencyKeyReusedError):
			run_sales_cycle(
				order=order_payload(customer, item_code, qty=2),
				payment=self.cash(),
				idempotency_key=self.key("k-422"),
			)
		self.assertEqual(count_documents(), before)

	def test_keys_are_scoped_per_user(self):
		customer, item_code = self.fixtures()
		ensure_api_user("_sa_api_other@example.com", SALES_ROLES)
		payload = order_payload(customer, item_code)
		mine = run_sales_cycle(order=payload, payment=self.cash(), idempotency_key=self.key("shared-key"))
		frappe.db.commit()
		frappe.set_user("_sa_api_other@example.com")
		theirs = run_sales_cycle(order=payload, payment=self.cash(), idempotency_key=self.key("shared-key"))
		self.assertFalse(theirs["replayed"])
		self.assertNotEqual(theirs["sales_order"], mine["sales_order"])

	def test_a_failed_call_releases_its_key(self):
		customer, _item = self.fixtures()
		short_item = make_item(stock_qty=0)
		frappe.db.commit()
		payload = order_payload(customer, short_item)
		with self.assertRaises(StepFailedError):
			run_sales_cycle(order=payload, payment=self.cash(), idempotency_key=self.key("retry-me"))
		from sales_automation.setup.demo import receive_stock

		receive_stock(short_item, self.env.warehouse, 5, COMPANY)
		frappe.db.commit()
		result = run_sales_cycle(order=payload, payment=self.cash(), idempotency_key=self.key("retry-me"))
		self.assertEqual(result["status"], "Completed")


class TestDryRun(APITestCase):
	def test_dry_run_returns_the_would_be_documents_and_persists_nothing(self):
		customer, item_code = self.fixtures()
		before = count_documents()
		preview = run_sales_cycle(
			order=order_payload(customer, item_code, qty=2, rate=50), payment=self.cash(), dry_run=True
		)
		self.assertEqual(count_documents(), before)
		self.assertEqual(preview["status"], "dry_run")
		self.assertTrue(preview["would_succeed"])
		self.assertEqual(
			[d["doctype"] for d in preview["documents"]], ["Delivery Note", "Sales Invoice", "Payment Entry"]
		)
		self.assertEqual(preview["documents"][1]["grand_total"], 100)
		self.assertEqual(preview["documents"][2]["paid_to"], self.env.cash_account)
		self.assertEqual(
			sum(flt(row["debit"]) for row in preview["gl_entries"]),
			sum(flt(row["credit"]) for row in preview["gl_entries"]),
		)
		self.assertTrue(any(row["actual_qty"] == -2 for row in preview["stock_ledger_entries"]))
		self.assertIn("default", preview["match_reason"])

	def test_dry_run_reports_the_error_a_step_would_hit(self):
		customer, _item = self.fixtures()
		short_item = make_item(stock_qty=1)
		frappe.db.commit()
		before = count_documents()
		preview = run_sales_cycle(order=order_payload(customer, short_item, qty=4), dry_run=True)
		self.assertEqual(count_documents(), before)
		self.assertFalse(preview["would_succeed"])
		self.assertEqual(preview["errors"][0]["step"], "delivery_note")
		self.assertIn("Not enough stock", preview["errors"][0]["message"])


class TestPermissions(APITestCase):
	def test_user_who_may_not_create_payments_is_refused_before_anything_is_created(self):
		user = "_sa_api_no_payments@example.com"
		ensure_api_user(user, ["Sales User", "Stock User"])
		customer, item_code = self.fixtures()
		before = count_documents()
		frappe.set_user(user)
		with self.assertRaises(frappe.PermissionError):
			run_sales_cycle(order=order_payload(customer, item_code), payment=self.cash())
		frappe.set_user("Administrator")
		self.assertEqual(count_documents(), before)

	def test_guest_is_refused(self):
		frappe.set_user("Guest")
		with self.assertRaises(frappe.PermissionError):
			run_sales_cycle(sales_order="anything")


class TestStepEndpoints(APITestCase):
	def test_deliver_invoice_and_pay_one_call_each_and_repeatable(self):
		customer, item_code = self.fixtures()
		sales_order = make_sales_order([{"item_code": item_code, "qty": 2, "rate": 25}], customer=customer)
		frappe.db.commit()

		delivered = deliver(sales_order=sales_order.name)
		self.assertEqual(
			(delivered["doctype"], delivered["docstatus"], delivered["created"]), ("Delivery Note", 1, True)
		)
		self.assertEqual(deliver(sales_order=sales_order.name)["name"], delivered["name"])

		invoiced = invoice(delivery_note=delivered["name"])
		self.assertEqual((invoiced["doctype"], invoiced["docstatus"]), ("Sales Invoice", 1))
		again = invoice(delivery_note=delivered["name"])
		self.assertEqual((again["name"], again["created"]), (invoiced["name"], False))

		paid = pay(sales_invoice=invoiced["name"], mode_of_payment=self.env.cash_mode)
		self.assertEqual(paid["doctype"], "Payment Entry")
		self.assertEqual(frappe.db.get_value("Sales Invoice", invoiced["name"], "status"), "Paid")
		self.assertEqual(pay(sales_invoice=invoiced["name"])["name"], paid["name"])

		self.assertEqual(
			documents_of(sales_order.name),
			{
				"Delivery Note": [delivered["name"]],
				"Sales Invoice": [invoiced["name"]],
				"Payment Entry": [paid["name"]],
			},
		)
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "status"), "Completed")

	def test_invoice_from_order_and_advance_payment(self):
		customer, item_code = self.fixtures()
		sales_order = make_sales_order([{"item_code": item_code, "qty": 1, "rate": 80}], customer=customer)
		frappe.db.commit()
		advance = pay(sales_order=sales_order.name, mode_of_payment=self.env.cash_mode)
		self.assertEqual(flt(frappe.db.get_value("Sales Order", sales_order.name, "advance_paid")), 80)
		invoiced = invoice(sales_order=sales_order.name, update_stock=True)
		self.assertEqual(frappe.db.get_value("Sales Invoice", invoiced["name"], "update_stock"), 1)
		self.assertEqual(frappe.db.get_value("Sales Invoice", invoiced["name"], "status"), "Paid")
		self.assertTrue(advance["created"])

	def test_step_endpoints_refuse_bad_sources(self):
		with self.assertRaises(InvalidRequestError):
			invoice(sales_order="x", delivery_note="y")
		with self.assertRaises(frappe.DoesNotExistError):
			deliver(sales_order="SAL-ORD-DOES-NOT-EXIST")
		customer, item_code = self.fixtures()
		draft = make_sales_order(
			[{"item_code": item_code, "qty": 1, "rate": 5}], customer=customer, submit=False
		)
		frappe.db.commit()
		with self.assertRaises(InvalidStateError):
			deliver(sales_order=draft.name)
