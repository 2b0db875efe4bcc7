"""Orders marked Skip Delivery Note (ERPNext's skip_delivery_note): never a Delivery Note, on every path.

The stock leaves the warehouse through an invoice that updates stock, the order ends Completed when
billed and paid, the invoice Paid, the ledgers balanced."""

import frappe
from frappe.utils import flt

from sales_automation import engine
from sales_automation.api import run_sales_cycle
from sales_automation.api.runs import run_bulk
from sales_automation.tests.base import AutomationTestCase
from sales_automation.tests.factories import (
	documents_of,
	gl_totals,
	make_customer,
	make_item,
	make_rule,
	make_sales_order,
	order_payload,
	run_of,
	test_env,
)


class TestSkipDeliveryNote(AutomationTestCase):
	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.local.response.pop("error", None)

	def assert_completed_without_delivery_note(self, sales_order_name: str, item_code: str, qty: float):
		docs = documents_of(sales_order_name)
		self.assertEqual(docs["Delivery Note"], [])
		self.assertEqual([len(docs["Sales Invoice"]), len(docs["Payment Entry"])], [1, 1])
		invoice = frappe.db.get_value(
			"Sales Invoice", docs["Sales Invoice"][0], ["update_stock", "status", "docstatus"], as_dict=True
		)
		self.assertEqual((invoice.update_stock, invoice.status, invoice.docstatus), (1, "Paid", 1))
		moved = frappe.db.get_value(
			"Stock Ledger Entry",
			{"voucher_no": docs["Sales Invoice"][0], "item_code": item_code, "is_cancelled": 0},
			"sum(actual_qty)",
		)
		self.assertEqual(flt(moved), -qty)  # the invoice moved the stock
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order_name, "status"), "Completed")
		debit, credit = gl_totals(docs["Sales Invoice"] + docs["Payment Entry"])
		self.assertGreater(debit, 0)
		self.assertEqual(debit, credit)
		self.assertEqual(run_of(sales_order_name).status, "Completed")
		delivery_step = next(row for row in run_of(sales_order_name).steps if row.step == "Delivery Note")
		self.assertEqual(delivery_step.status, "Skipped")
		self.assertIn("skips the Delivery Note", delivery_step.message)

	def test_the_submit_hook_in_the_same_transaction(self):
		customer, item_code = make_customer(), make_item(stock_qty=5)
		make_rule(customer)  # deliver, invoice from the Delivery Note, pay
		sales_order = make_sales_order(
			[{"item_code": item_code, "qty": 2, "rate": 30}], customer=customer, skip_delivery_note=1
		)
		self.assert_completed_without_delivery_note(sales_order.name, item_code, 2)

	def test_the_submit_hook_in_the_background(self):
		customer, item_code = make_customer(), make_item(stock_qty=5)
		make_rule(customer, execution_mode="Background", invoice_source="Sales Order")
		sales_order = make_sales_order(
			[{"item_code": item_code, "qty": 3, "rate": 30}], customer=customer, skip_delivery_note=1
		)
		engine.process_run(run_of(sales_order.name).name, drain_seconds=0)
		self.assert_completed_without_delivery_note(sales_order.name, item_code, 3)

	def test_the_one_call_with_the_default_plan(self):
		customer, item_code = make_customer(), make_item(stock_qty=5)
		frappe.db.commit()  # the endpoint rolls back on failure; fixtures must survive that
		answer = run_sales_cycle(
			order=order_payload(customer, item_code, qty=2, rate=40, skip_delivery_note=1),
			payment={"mode_of_payment": test_env().cash_mode},
		)
		self.assertEqual(answer["status"], "Completed")
		self.assertIsNone(answer["delivery_note"])
		self.assert_completed_without_delivery_note(answer["sales_order"], item_code, 2)

	def test_bulk(self):
		rule = make_rule(make_customer(), execution_mode="Background")
		customer, item_code = make_customer(), make_item(stock_qty=5)
		sales_order = make_sales_order(
			[{"item_code": item_code, "qty": 1, "rate": 25}], customer=customer, skip_delivery_note=1
		)
		answer = run_bulk(sales_orders=[sales_order.name], rule=rule.name)
		engine.process_run(answer["runs"][0], drain_seconds=0)
		self.assert_completed_without_delivery_note(sales_order.name, item_code, 1)

	def test_drop_ship_lines_are_billed_on_an_invoice_of_their_own(self):
		"""ERPNext refuses an invoice that updates stock with a drop-shipped row: the stock line's invoice
		moves the stock, the drop-ship line is billed apart on the next pass (the one call on the order)."""
		from sales_automation.constants import DROP_SHIP_AT_ONCE
		from sales_automation.tests.setups import ensure_supplier, make_drop_ship_item

		supplier = ensure_supplier()
		customer, stock_item = make_customer(), make_item(stock_qty=5)
		drop_ship_item = make_drop_ship_item(supplier)
		make_rule(customer, drop_ship_invoicing=DROP_SHIP_AT_ONCE)
		sales_order = make_sales_order(
			[
				{"item_code": stock_item, "qty": 2, "rate": 50},
				{
					"item_code": drop_ship_item,
					"qty": 1,
					"rate": 300,
					"delivered_by_supplier": 1,
					"supplier": supplier,
				},
			],
			customer=customer,
			skip_delivery_note=1,
		)
		run = run_of(sales_order.name)
		self.assertEqual(run.status, "Partially Completed")
		invoice_step = next(row for row in run.steps if row.step == "Sales Invoice")
		self.assertIn("invoice of their own", invoice_step.message)
		first = frappe.get_doc("Sales Invoice", invoice_step.reference_name)
		self.assertEqual((first.update_stock, [row.item_code for row in first.items]), (1, [stock_item]))

		frappe.db.commit()  # the endpoint rolls back on failure; fixtures must survive that
		answer = run_sales_cycle(sales_order=sales_order.name)
		self.assertEqual(answer["status"], "Completed")

		docs = documents_of(sales_order.name)
		self.assertEqual(docs["Delivery Note"], [])
		self.assertEqual(len(docs["Sales Invoice"]), 2)
		second = frappe.get_doc(
			"Sales Invoice", next(name for name in docs["Sales Invoice"] if name != first.name)
		)
		self.assertEqual(
			(second.update_stock, [row.item_code for row in second.items]), (0, [drop_ship_item])
		)
		self.assertEqual(flt(frappe.db.get_value("Sales Order", sales_order.name, "per_billed")), 100)
		self.assertFalse(
			frappe.db.exists("Stock Ledger Entry", {"item_code": drop_ship_item, "is_cancelled": 0})
		)
		debit, credit = gl_totals(docs["Sales Invoice"] + docs["Payment Entry"])
		self.assertEqual(debit, credit)

	def test_the_orders_stock_reservation_is_consumed_by_the_invoice(self):
		from sales_automation.tests.setups import enable_stock_reservation

		enable_stock_reservation(self)
		customer, item_code = make_customer(), make_item(stock_qty=10)
		make_rule(customer)
		sales_order = make_sales_order(
			[{"item_code": item_code, "qty": 4, "rate": 25}],
			customer=customer,
			skip_delivery_note=1,
			reserve_stock=1,
		)
		self.assert_completed_without_delivery_note(sales_order.name, item_code, 4)
		entries = frappe.get_all(
			"Stock Reservation Entry",
			filters={"voucher_type": "Sales Order", "voucher_no": sales_order.name, "docstatus": 1},
			fields=["reserved_qty", "delivered_qty", "status"],
		)
		self.assertTrue(entries, "the order reserved its stock on submit")
		self.assertEqual(sum(flt(row.delivered_qty) for row in entries), 4)
		self.assertEqual({row.status for row in entries}, {"Delivered"})
		reserved = frappe.db.get_value(
			"Bin", {"item_code": item_code, "warehouse": test_env().warehouse}, "reserved_stock"
		)
		self.assertEqual(flt(reserved), 0)
