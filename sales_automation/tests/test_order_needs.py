"""The engine works from what the order still needs, whoever made its earlier documents: bundles,
drop-ship lines, deliveries made by hand, and the setups it leaves alone."""

import frappe
from frappe.utils import flt

from sales_automation import engine
from sales_automation.api import deliver, run_sales_cycle
from sales_automation.exceptions import InvalidStateError, StepFailedError
from sales_automation.tests import factories
from sales_automation.tests.base import AutomationTestCase
from sales_automation.tests.setups import (
	deliver_by_hand,
	ensure_supplier,
	invoice_by_hand,
	make_product_bundle,
)


class OrderNeedsTestCase(AutomationTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		frappe.db.commit()

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.local.response.pop("error", None)

	def stock_moved(self, item_code: str) -> float:
		return flt(
			frappe.db.sql(
				"""select sum(actual_qty) from `tabStock Ledger Entry`
				where item_code = %s and voucher_type in ('Delivery Note', 'Sales Invoice') and is_cancelled = 0""",
				item_code,
			)[0][0]
		)

	def assert_paid(self, sales_order_name: str):
		docs = factories.documents_of(sales_order_name)
		for invoice in docs["Sales Invoice"]:
			self.assertEqual(frappe.db.get_value("Sales Invoice", invoice, "status"), "Paid")
		for names in docs.values():
			debit, credit = factories.gl_totals(names)
			self.assertEqual(flt(debit, 2), flt(credit, 2))
		return docs


class TestBundles(OrderNeedsTestCase):
	def test_a_bundle_order_delivers_its_packed_items_bills_and_pays(self):
		first, second = factories.make_item(stock_qty=10), factories.make_item(stock_qty=10)
		bundle = make_product_bundle({first: 2, second: 1})
		customer = factories.make_customer()
		factories.make_rule(customer)
		sales_order = factories.make_sales_order(
			[{"item_code": bundle, "qty": 3, "rate": 50}], customer=customer
		)

		run = factories.run_of(sales_order.name)
		self.assertEqual(run.status, "Completed", run.error)
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "status"), "Completed")
		self.assertEqual((self.stock_moved(first), self.stock_moved(second)), (-6, -3))
		docs = self.assert_paid(sales_order.name)
		self.assertEqual([len(names) for names in docs.values()], [1, 1, 1])

	def test_a_short_bundle_component_fails_the_delivery_naming_the_component(self):
		first, second = factories.make_item(stock_qty=10), factories.make_item(stock_qty=1)
		bundle = make_product_bundle({first: 1, second: 1})
		customer = factories.make_customer()
		factories.make_rule(customer)
		with self.assertRaises(StepFailedError) as caught:
			factories.make_sales_order([{"item_code": bundle, "qty": 2, "rate": 50}], customer=customer)
		self.assertIn(second, str(caught.exception))

	def test_deliver_available_ships_whole_bundles_only(self):
		first, second = factories.make_item(stock_qty=10), factories.make_item(stock_qty=3)
		bundle = make_product_bundle({first: 1, second: 2})
		customer = factories.make_customer()
		factories.make_rule(customer, shortage_policy="Deliver Available")
		sales_order = factories.make_sales_order(
			[{"item_code": bundle, "qty": 4, "rate": 50}], customer=customer
		)

		run = factories.run_of(sales_order.name)
		self.assertEqual(run.status, "Partially Completed")
		self.assertIn("delivery:", run.left_open)
		self.assertEqual(self.stock_moved(second), -2)  # one whole bundle of the four


class TestPartlyHandledByHand(OrderNeedsTestCase):
	def test_a_manual_partial_delivery_is_billed_with_the_rest_in_one_invoice_and_paid(self):
		item_code = factories.make_item(stock_qty=10)
		customer = factories.make_customer()
		rule = factories.make_rule(customer, enabled=1)
		sales_order = factories.make_sales_order(
			[{"item_code": item_code, "qty": 5, "rate": 20}], customer=customer, automate=False
		)
		deliver_by_hand(sales_order.name, 2)

		run = engine.start_for_order(sales_order, trigger="Manual", rule_name=rule.name)
		self.assertEqual(run.status, "Completed", run.error)
		docs = self.assert_paid(sales_order.name)
		self.assertEqual(len(docs["Delivery Note"]), 2)
		self.assertEqual(len(docs["Sales Invoice"]), 1)
		billed = frappe.get_all(
			"Sales Invoice Item", filters={"parent": docs["Sales Invoice"][0]}, pluck="delivery_note"
		)
		self.assertEqual(sorted(billed), sorted(docs["Delivery Note"]))
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "status"), "Completed")
		self.assertEqual(self.stock_moved(item_code), -5)

	def test_a_manual_partial_invoice_is_not_billed_twice_and_both_invoices_are_paid_at_once(self):
		item_code = factories.make_item(stock_qty=10)
		customer = factories.make_customer()
		sales_order = factories.make_sales_order(
			[{"item_code": item_code, "qty": 4, "rate": 25}], customer=customer, automate=False
		)
		invoice_by_hand(sales_order.name, 1)

		result = run_sales_cycle(
			sales_order=sales_order.name, payment={"mode_of_payment": self.env.cash_mode}
		)
		self.assertEqual(result["status"], "Completed", result["left_open"])
		docs = self.assert_paid(sales_order.name)
		self.assertEqual(len(docs["Sales Invoice"]), 2)
		self.assertEqual(len(docs["Payment Entry"]), 1)
		billed = sum(
			frappe.get_all(
				"Sales Invoice Item", filters={"parent": ["in", docs["Sales Invoice"]]}, pluck="amount"
			)
		)
		self.assertEqual(billed, 100)
		self.assertEqual(frappe.db.get_value("Payment Entry", docs["Payment Entry"][0], "paid_amount"), 100)


class TestDropShip(OrderNeedsTestCase):
	def drop_ship_order(self, drop_ship_invoicing: str):
		stock_item, drop_item = factories.make_item(stock_qty=5), factories.make_item()
		customer = factories.make_customer()
		factories.make_rule(customer, drop_ship_invoicing=drop_ship_invoicing)
		sales_order = factories.make_sales_order(
			[
				{"item_code": stock_item, "qty": 1, "rate": 30},
				{
					"item_code": drop_item,
					"qty": 2,
					"rate": 40,
					"delivered_by_supplier": 1,
					"supplier": ensure_supplier(),
				},
			],
			customer=customer,
		)
		return sales_order, stock_item, drop_item

	def test_drop_ship_lines_wait_for_the_suppliers_delivery_and_the_run_says_so(self):
		sales_order, stock_item, drop_item = self.drop_ship_order("After Supplier Delivery")
		run = factories.run_of(sales_order.name)
		self.assertEqual(run.status, "Partially Completed")
		self.assertIn("billing:", run.left_open)
		self.assertIn(drop_item, run.left_open)
		docs = factories.documents_of(sales_order.name)
		items = frappe.get_all(
			"Delivery Note Item", filters={"parent": docs["Delivery Note"][0]}, pluck="item_code"
		)
		self.assertEqual(items, [stock_item])  # never on a Delivery Note
		billed = frappe.get_all(
			"Sales Invoice Item", filters={"parent": docs["Sales Invoice"][0]}, pluck="item_code"
		)
		self.assertEqual(billed, [stock_item])

	def test_drop_ship_lines_invoiced_at_once_are_billed_and_paid_with_the_rest(self):
		sales_order, stock_item, drop_item = self.drop_ship_order("At Once")
		run = factories.run_of(sales_order.name)
		self.assertEqual(run.status, "Completed", run.left_open)
		docs = self.assert_paid(sales_order.name)
		billed = frappe.get_all(
			"Sales Invoice Item", filters={"parent": docs["Sales Invoice"][0]}, pluck="item_code"
		)
		self.assertEqual(sorted(billed), sorted([stock_item, drop_item]))
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "per_billed"), 100)
		self.assertEqual(frappe.db.get_value("Sales Invoice", docs["Sales Invoice"][0], "grand_total"), 110)


class TestOutOfScope(OrderNeedsTestCase):
	def test_an_inter_company_order_is_refused_naming_the_field_and_gets_no_run(self):
		sales_order = factories.make_sales_order(
			[{"item_code": factories.make_item(stock_qty=2), "qty": 1, "rate": 10}], automate=False
		)
		frappe.db.set_value("Sales Order", sales_order.name, "is_internal_customer", 1)
		frappe.db.commit()
		before = factories.count_documents()
		with self.assertRaises(InvalidStateError) as caught:
			deliver(sales_order=sales_order.name)
		self.assertEqual(caught.exception.field, "sales_order.customer")
		self.assertEqual(factories.count_documents(), before)
		sales_order.reload()
		self.assertIsNone(engine.start_for_order(sales_order, trigger="Manual"))
