"""Nothing is believed that the order's own documents don't show, and orders the app submits carry
ERPNext's own status."""

import frappe

from sales_automation import engine
from sales_automation.api import deliver, run_sales_cycle
from sales_automation.documents import ORDER_FIELDS, ORDER_ITEM_FIELDS, linking, rows_of
from sales_automation.exceptions import InvalidStateError
from sales_automation.tests import factories
from sales_automation.tests.base import AutomationTestCase


class OrderStateTestCase(AutomationTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		frappe.db.commit()  # the endpoint rolls back on failure; fixtures must survive that

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.local.response.pop("error", None)

	def forged_order(self, header=None, row=None, customer=None, automate=False):
		"""A submitted order whose stored progress fields were filled by its creator, as ERPNext's own
		REST API stores them."""
		item_code = factories.make_item(stock_qty=5)
		sales_order = factories.make_sales_order(
			[{"item_code": item_code, "qty": 2, "rate": 25, **(row or {})}],
			customer=customer or factories.make_customer(),
			automate=automate,
		)
		if header:
			frappe.db.set_value("Sales Order", sales_order.name, header, update_modified=False)
		if row:
			frappe.db.set_value("Sales Order Item", sales_order.items[0].name, row, update_modified=False)
		frappe.db.commit()
		return sales_order


class TestForgedProgress(OrderStateTestCase):
	def assert_refused(self, sales_order, field):
		before = factories.count_documents()
		with self.assertRaises(InvalidStateError) as caught:
			run_sales_cycle(sales_order=sales_order.name, payment={"mode_of_payment": self.env.cash_mode})
		self.assertEqual(caught.exception.field, field)
		self.assertEqual(frappe.local.response["error"]["field"], field)
		self.assertEqual(factories.count_documents(), before)

	def test_an_order_recording_a_billing_no_invoice_shows_is_refused_naming_the_field(self):
		self.assert_refused(self.forged_order(header={"per_billed": 100}), "sales_order.per_billed")

	def test_an_order_row_recording_a_delivery_no_note_shows_is_refused_naming_the_field(self):
		self.assert_refused(self.forged_order(row={"delivered_qty": 2}), "sales_order.items[0].delivered_qty")

	def test_an_order_recording_an_advance_no_ledger_shows_is_refused_naming_the_field(self):
		self.assert_refused(self.forged_order(header={"advance_paid": 50}), "sales_order.advance_paid")

	def test_a_background_run_on_such_an_order_fails_naming_the_field_and_makes_nothing(self):
		customer = factories.make_customer()
		factories.make_rule(customer, execution_mode="Background")
		sales_order = self.forged_order(header={"per_billed": 100}, customer=customer, automate=True)
		run = factories.run_of(sales_order.name)
		engine.process_run(run.name, drain_seconds=0)
		run.reload()
		self.assertEqual(run.status, "Failed")
		self.assertIn("per_billed", run.error)
		self.assertEqual(
			factories.documents_of(sales_order.name),
			{"Delivery Note": [], "Sales Invoice": [], "Payment Entry": []},
		)

	def test_progress_its_documents_show_is_believed_and_the_cycle_continues(self):
		sales_order = self.forged_order()
		deliver(sales_order=sales_order.name)  # a real delivery: per_delivered 100, shown by the note
		result = run_sales_cycle(
			sales_order=sales_order.name, payment={"mode_of_payment": self.env.cash_mode}
		)
		self.assertEqual(result["status"], "Completed")
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "status"), "Completed")


class TestOrderStatus(OrderStateTestCase):
	def test_an_order_the_call_submits_carries_erpnexts_status_when_nothing_else_touches_it(self):
		customer = factories.make_customer()
		# an advance only: neither delivery nor billing touches the order (a payment_entry step against
		# an invoice the call does not make is refused, issue 25)
		rule = factories.make_rule(
			customer,
			create_delivery_note=0,
			create_sales_invoice=0,
			create_payment_entry=1,
			payment_against="Sales Order (Advance)",
		)
		result = run_sales_cycle(
			order=factories.order_payload(customer, factories.make_item(stock_qty=5), qty=1, rate=10),
			rule=rule.name,
			steps=["payment_entry"],
		)
		self.assertEqual(result["status"], "Completed")
		self.assertEqual(
			frappe.db.get_value("Sales Order", result["sales_order"], ["docstatus", "status"]),
			(1, "To Deliver and Bill"),
		)


class TestOneGate(OrderStateTestCase):
	def test_a_closed_order_is_refused_alike_by_the_endpoint_bulk_and_resume(self):
		from sales_automation.api.runs import resume_run, run_bulk
		from sales_automation.exceptions import RunNotResumableError

		sales_order = factories.order_with_rule(1, 10, stock=2, execution_mode="Background")
		run_name = factories.run_of(sales_order.name).name
		frappe.db.set_value("Sales Order", sales_order.name, "status", "Closed")
		frappe.db.commit()
		before = factories.count_documents()

		with self.assertRaises(InvalidStateError) as endpoint:
			deliver(sales_order=sales_order.name)
		skipped = run_bulk(sales_orders=[sales_order.name])["skipped"]
		with self.assertRaises(RunNotResumableError) as resumed:
			resume_run(run_name)

		self.assertIn("it is Closed", str(endpoint.exception))
		self.assertEqual(skipped, [{"sales_order": sales_order.name, "reason": "it is Closed"}])
		self.assertIn("it is Closed", str(resumed.exception))
		self.assertEqual(factories.count_documents(), before)


class TestOrderReads(OrderStateTestCase):
	"""The engine reads the order with its rows, and the order's documents with the rows that link
	them, in one statement each: what they return is what the documents show."""

	def test_the_order_and_its_rows_are_read_as_stored_in_one_statement(self):
		items = [factories.make_item(stock_qty=5) for _ in range(3)]
		sales_order = factories.make_sales_order(
			[{"item_code": item, "qty": idx + 1, "rate": 10} for idx, item in enumerate(items)],
			automate=False,
		)
		deliver(sales_order=sales_order.name)
		stored = frappe.get_doc("Sales Order", sales_order.name)

		state = {}
		self.assertEqual(
			factories.statements_of(lambda: state.update(engine.order_state(sales_order.name))), 1
		)
		for field in ORDER_FIELDS:
			self.assertEqual(state[field], stored.get(field), field)
		self.assertEqual([row.name for row in state["lines"]], [row.name for row in stored.items])
		for line, row in zip(state["lines"], stored.items, strict=True):
			for field in ORDER_ITEM_FIELDS:
				self.assertEqual(line[field], row.get(field), field)
		self.assertEqual([line.delivered_qty for line in state["lines"]], [1, 2, 3])
		self.assertIsNone(engine.order_state("no such order"))

	def test_the_order_s_documents_are_read_with_the_rows_that_link_them_in_one_statement(self):
		sales_order = factories.make_sales_order(
			[{"item_code": factories.make_item(stock_qty=5), "qty": 2, "rate": 25}], automate=False
		)

		def outstanding():
			return rows_of(
				"Sales Invoice",
				filters={"name": ["in", linking("Sales Invoice", "sales_order", sales_order.name, 1)]},
				fields=["name", "outstanding_amount"],
			)

		self.assertEqual(outstanding(), [])  # none yet
		run_sales_cycle(sales_order=sales_order.name, steps=["delivery_note", "sales_invoice"])
		invoices = factories.documents_of(sales_order.name)["Sales Invoice"]
		self.assertEqual(len(invoices), 1)
		rows = []
		self.assertEqual(factories.statements_of(lambda: rows.extend(outstanding())), 1)
		self.assertEqual([(row.name, row.outstanding_amount) for row in rows], [(invoices[0], 50)])
		self.assertEqual(engine.linked_names("Sales Invoice", "sales_order", sales_order.name, 1), invoices)
		self.assertEqual(
			engine.linked_document(
				"Delivery Note", "against_sales_order", sales_order.name, 1, name_only=True
			),
			factories.documents_of(sales_order.name)["Delivery Note"][0],
		)
