"""Cancelling the cycle: reverse order, all or nothing, stock and ledgers back to before the cycle."""

import frappe
from frappe.utils import flt

from sales_automation.api.runs import cancel_cycle
from sales_automation.exceptions import CycleNotCancellableError
from sales_automation.tests.base import IntegrationTestCase
from sales_automation.tests.factories import (
	make_customer,
	make_item,
	make_rule,
	make_sales_order,
	run_of,
	test_env,
)


def cycle_documents(sales_order, run) -> list[tuple[str, str]]:
	"""The cycle's documents in the order a cancel must take them."""
	return [
		("Payment Entry", run.payment_entry),
		("Sales Invoice", run.sales_invoice),
		("Delivery Note", run.delivery_note),
		("Sales Order", sales_order.name),
	]


class TestCancelCycle(IntegrationTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.env = test_env()

	def stock_qty(self, item_code):
		return flt(
			frappe.db.get_value(
				"Bin", {"item_code": item_code, "warehouse": self.env.warehouse}, "actual_qty"
			)
		)

	def cycle(self):
		customer = make_customer()
		make_rule(customer)
		item_code = make_item(stock_qty=6)
		sales_order = make_sales_order([{"item_code": item_code, "qty": 4, "rate": 30}], customer=customer)
		run = run_of(sales_order.name)
		self.assertEqual(run.status, "Completed")
		self.assertEqual(self.stock_qty(item_code), 2)
		return sales_order, run, item_code

	def test_cancel_reverses_payment_invoice_delivery_and_order(self):
		sales_order, run, item_code = self.cycle()
		vouchers = [run.delivery_note, run.sales_invoice, run.payment_entry]

		answer = cancel_cycle(sales_order.name, cancel_order=True)

		self.assertEqual(
			[(row["doctype"], row["name"]) for row in answer["cancelled"]], cycle_documents(sales_order, run)
		)
		for doctype, name in cycle_documents(sales_order, run):
			self.assertEqual(frappe.db.get_value(doctype, name, "docstatus"), 2, doctype)
		self.assertEqual(self.stock_qty(item_code), 6)
		self.assertFalse(frappe.db.exists("GL Entry", {"voucher_no": ["in", vouchers], "is_cancelled": 0}))
		self.assertFalse(
			frappe.db.exists("Stock Ledger Entry", {"voucher_no": ["in", vouchers], "is_cancelled": 0})
		)
		self.assertFalse(
			frappe.db.exists("Payment Ledger Entry", {"voucher_no": ["in", vouchers], "delinked": 0})
		)
		self.assertEqual(run_of(sales_order.name).status, "Cancelled")

	def test_cancel_keeps_the_order_unless_asked(self):
		sales_order, run, item_code = self.cycle()
		cancel_cycle(sales_order.name)
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "docstatus"), 1)
		self.assertEqual(frappe.db.get_value("Delivery Note", run.delivery_note, "docstatus"), 2)
		self.assertEqual(self.stock_qty(item_code), 6)

	def test_a_blocking_document_downstream_refuses_and_changes_nothing(self):
		from erpnext.controllers.sales_and_purchase_return import make_return_doc

		sales_order, run, item_code = self.cycle()
		credit_note = make_return_doc("Sales Invoice", run.sales_invoice)
		credit_note.submit()

		with self.assertRaises(CycleNotCancellableError) as caught:
			cancel_cycle(sales_order.name, cancel_order=True)

		self.assertIn(run.sales_invoice, str(caught.exception))
		for doctype, name in cycle_documents(sales_order, run):
			self.assertEqual(frappe.db.get_value(doctype, name, "docstatus"), 1, doctype)
		self.assertTrue(frappe.db.exists("GL Entry", {"voucher_no": run.payment_entry, "is_cancelled": 0}))
		self.assertEqual(self.stock_qty(item_code), 2)
		self.assertEqual(run_of(sales_order.name).status, "Completed")
