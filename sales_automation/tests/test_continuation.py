"""Orders finish by themselves: a Partially Completed run continues when what its order waits for
arrives, with no call and no click. Each test commits its documents as a person would, then lets a
real RQ worker of the bench (burst mode) run what the events queued, and asserts on the database."""

import frappe
from frappe.utils import add_days, flt, nowdate

from sales_automation import continuation
from sales_automation.constants import DROP_SHIP_AFTER_SUPPLIER_DELIVERY
from sales_automation.setup.demo import receive_stock
from sales_automation.tests.base import AutomationTestCase
from sales_automation.tests.factories import (
	documents_of,
	gl_totals,
	make_customer,
	make_item,
	make_rule,
	make_sales_order,
	run_of,
	test_env,
	work_off_queue,
)
from sales_automation.tests.setups import ensure_supplier, make_drop_ship_item

DELIVER_AVAILABLE = "Deliver Available"


def completed(sales_order_name: str) -> bool:
	docs = documents_of(sales_order_name)
	return (
		frappe.db.get_value("Sales Order", sales_order_name, "status") == "Completed"
		and len(docs["Delivery Note"]) >= 1
		and len(docs["Payment Entry"]) >= 1
	)


def runs_of(sales_order_name: str) -> list[str]:
	return frappe.get_all("Sales Automation Run", filters={"sales_order": sales_order_name}, pluck="name")


def purchase_receipt(item_code: str, qty: float):
	env = test_env()
	receipt = frappe.get_doc(
		{
			"doctype": "Purchase Receipt",
			"company": env.company,
			"supplier": ensure_supplier(),
			"posting_date": nowdate(),
			"items": [
				{"item_code": item_code, "qty": qty, "rate": 40, "warehouse": env.warehouse},
			],
		}
	)
	receipt.insert()
	receipt.submit()
	return receipt


def stock_reconciliation(item_code: str, qty: float):
	env = test_env()
	reconciliation = frappe.get_doc(
		{
			"doctype": "Stock Reconciliation",
			"company": env.company,
			"purpose": "Stock Reconciliation",
			"items": [{"item_code": item_code, "warehouse": env.warehouse, "qty": qty, "valuation_rate": 40}],
		}
	)
	reconciliation.insert()
	reconciliation.submit()
	return reconciliation


def let_the_worker_run():
	"""Commit as a person's request does, then let a real worker run what the events queued."""
	frappe.db.commit()
	work_off_queue("long")  # the continuation job's queue
	frappe.db.rollback()  # a fresh snapshot: what the worker committed


class ContinuationTestCase(AutomationTestCase):
	def setUp(self):
		continuation.forget()
		frappe.db.commit()

	def waiting_orders(self, count: int, qty: float, **rule_fields):
		"""`count` orders of one new item with none on hand, oldest first, each left waiting."""
		customer, item_code = make_customer(), make_item(stock_qty=0)
		make_rule(customer, shortage_policy=DELIVER_AVAILABLE, **rule_fields)
		orders = []
		for idx in range(count):
			orders.append(
				make_sales_order(
					[{"item_code": item_code, "qty": qty, "rate": 30}],
					customer=customer,
					delivery_date=add_days(nowdate(), 5 + idx),
				)
			)
		for sales_order in orders:
			run = run_of(sales_order.name)
			self.assertEqual(run.status, "Partially Completed")
			self.assertIn(f"{qty:g} x {item_code}", run.waiting_for)
		frappe.db.commit()
		return item_code, orders

	def assert_one_run_each_and_no_negative_stock(self, orders, item_code):
		for sales_order in orders:
			self.assertEqual(len(runs_of(sales_order.name)), 1)
		self.assertGreaterEqual(flt(frappe.db.get_value("Bin", {"item_code": item_code}, "actual_qty")), 0)


class TestStockArrives(ContinuationTestCase):
	def test_a_purchase_receipt_completes_the_oldest_orders_first_and_a_second_one_the_rest(self):
		item_code, orders = self.waiting_orders(3, qty=2)

		purchase_receipt(item_code, 5)  # two and a half orders' worth
		let_the_worker_run()

		self.assertTrue(completed(orders[0].name))
		self.assertTrue(completed(orders[1].name))
		third = frappe.get_doc("Sales Order", orders[2].name)
		self.assertEqual(flt(third.items[0].delivered_qty), 1)
		run = run_of(orders[2].name)
		self.assertEqual(run.status, "Partially Completed")
		self.assertIn(f"1 x {item_code}", run.waiting_for)
		self.assertEqual(run.continuations, 1)
		first_run = run_of(orders[0].name)
		self.assertEqual((first_run.status, first_run.continuations), ("Completed", 1))
		self.assertIsNone(first_run.waiting_for)
		self.assert_one_run_each_and_no_negative_stock(orders, item_code)

		purchase_receipt(item_code, 1)
		let_the_worker_run()

		self.assertTrue(completed(orders[2].name))
		run = run_of(orders[2].name)
		self.assertEqual((run.status, run.continuations), ("Completed", 2))
		for sales_order in orders:
			docs = documents_of(sales_order.name)
			debit, credit = gl_totals(docs["Delivery Note"] + docs["Sales Invoice"] + docs["Payment Entry"])
			self.assertEqual(debit, credit)
			self.assertEqual(
				frappe.db.get_value("Sales Invoice", docs["Sales Invoice"][-1], "status"), "Paid"
			)
		self.assert_one_run_each_and_no_negative_stock(orders, item_code)
		self.assertEqual(flt(frappe.db.get_value("Bin", {"item_code": item_code}, "actual_qty")), 0)

	def test_a_material_receipt_continues_a_waiting_order(self):
		item_code, orders = self.waiting_orders(1, qty=3)
		receive_stock(item_code, test_env().warehouse, 3, test_env().company)
		let_the_worker_run()
		self.assertTrue(completed(orders[0].name))

	def test_a_stock_reconciliation_continues_a_waiting_order(self):
		item_code, orders = self.waiting_orders(1, qty=2)
		stock_reconciliation(item_code, 2)
		let_the_worker_run()
		self.assertTrue(completed(orders[0].name))

	def test_a_receipt_of_another_item_queues_nothing(self):
		_item_code, orders = self.waiting_orders(1, qty=2)
		other = make_item(stock_qty=0)
		frappe.db.commit()
		frappe.cache.delete_value(continuation.DIRTY_KEY)
		purchase_receipt(other, 5)
		frappe.db.commit()
		self.assertFalse(frappe.cache.get_value(continuation.DIRTY_KEY))
		self.assertEqual(run_of(orders[0].name).status, "Partially Completed")

	def test_a_rule_that_does_not_continue_leaves_the_order_waiting(self):
		item_code, orders = self.waiting_orders(1, qty=2, continue_when_stock_arrives=0)
		purchase_receipt(item_code, 2)
		let_the_worker_run()
		run = run_of(orders[0].name)
		self.assertEqual((run.status, run.continuations), ("Partially Completed", 0))
		self.assertEqual(documents_of(orders[0].name)["Delivery Note"], [])

	def test_the_sweep_continues_what_an_event_missed(self):
		item_code, orders = self.waiting_orders(1, qty=2)
		receive_stock(item_code, test_env().warehouse, 2, test_env().company)
		continuation.forget()  # as if the after-commit event were lost (a worker killed, say)
		frappe.db.commit()
		self.assertEqual(run_of(orders[0].name).status, "Partially Completed")

		continuation.sweep()

		self.assertTrue(completed(orders[0].name))


class TestWaitingOrdersAtScale(ContinuationTestCase):
	BURST = 200

	def test_one_receipt_for_many_waiting_orders_queues_one_job_and_completes_them_all(self):
		from frappe.utils.background_jobs import get_queue

		item_code, orders = self.waiting_orders(self.BURST, qty=1, create_payment_entry=0)
		work_off_queue("long")  # what earlier tests left queued: the count below is this receipt's alone
		queue = get_queue("long")
		before = queue.count

		purchase_receipt(item_code, self.BURST)
		frappe.db.commit()

		self.assertEqual(queue.count - before, 1)  # one continuation job, whatever the number of orders
		work_off_queue("long")
		frappe.db.rollback()
		for sales_order in orders:
			docs = documents_of(sales_order.name)
			self.assertEqual(
				(len(docs["Delivery Note"]), len(docs["Sales Invoice"])), (1, 1), sales_order.name
			)
			self.assertEqual(len(runs_of(sales_order.name)), 1)
		self.assertEqual(
			frappe.db.count(
				"Sales Automation Run",
				{"sales_order": ["in", [o.name for o in orders]], "status": "Completed"},
			),
			self.BURST,
		)
		self.assertEqual(flt(frappe.db.get_value("Bin", {"item_code": item_code}, "actual_qty")), 0)


class TestOtherArrivals(ContinuationTestCase):
	def test_a_person_delivering_the_rest_by_hand_lets_the_run_invoice_and_pay_it(self):
		from erpnext.selling.doctype.sales_order.sales_order import make_delivery_note

		customer, item_code = make_customer(), make_item(stock_qty=1)
		make_rule(customer, shortage_policy=DELIVER_AVAILABLE, continue_when_stock_arrives=0)
		sales_order = make_sales_order([{"item_code": item_code, "qty": 2, "rate": 30}], customer=customer)
		self.assertEqual(run_of(sales_order.name).status, "Partially Completed")
		receive_stock(item_code, test_env().warehouse, 1, test_env().company)
		let_the_worker_run()
		self.assertEqual(run_of(sales_order.name).continuations, 0)  # the rule does not wait for stock

		delivery_note = make_delivery_note(sales_order.name)
		delivery_note.insert()
		delivery_note.submit()
		let_the_worker_run()

		run = run_of(sales_order.name)
		self.assertEqual((run.status, run.continuations), ("Completed", 1))
		docs = documents_of(sales_order.name)
		self.assertIn(delivery_note.name, docs["Delivery Note"])
		self.assertEqual(len(docs["Delivery Note"]), 2)
		self.assertEqual(len(docs["Sales Invoice"]), 2)
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "status"), "Completed")
		self.assertTrue(
			frappe.db.exists("Sales Invoice Item", {"delivery_note": delivery_note.name, "docstatus": 1})
		)

	def test_a_drop_ship_order_completes_after_the_supplier_delivery_is_recorded(self):
		from erpnext.buying.doctype.purchase_order.purchase_order import update_status
		from erpnext.selling.doctype.sales_order.sales_order import make_purchase_order

		supplier = ensure_supplier()
		customer, drop_ship_item = make_customer(), make_drop_ship_item(supplier)
		make_rule(customer, drop_ship_invoicing=DROP_SHIP_AFTER_SUPPLIER_DELIVERY)
		sales_order = make_sales_order(
			[
				{
					"item_code": drop_ship_item,
					"qty": 1,
					"rate": 300,
					"delivered_by_supplier": 1,
					"supplier": supplier,
				}
			],
			customer=customer,
		)
		run = run_of(sales_order.name)
		self.assertEqual(run.status, "Partially Completed")
		purchase_order = make_purchase_order(
			sales_order.name, [{"item_code": drop_ship_item, "supplier": supplier}]
		)
		purchase_order.supplier = supplier
		purchase_order.schedule_date = add_days(nowdate(), 3)
		purchase_order.insert()
		purchase_order.submit()
		frappe.db.commit()
		self.assertIn(drop_ship_item, run_of(sales_order.name).waiting_for or "")

		update_status("Delivered", purchase_order.name)
		let_the_worker_run()

		run = run_of(sales_order.name)
		self.assertEqual((run.status, run.continuations), ("Completed", 1))
		docs = documents_of(sales_order.name)
		self.assertEqual(docs["Delivery Note"], [])
		self.assertEqual((len(docs["Sales Invoice"]), len(docs["Payment Entry"])), (1, 1))
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "status"), "Completed")


class TestWaitingIsVisible(ContinuationTestCase):
	def tearDown(self):
		frappe.db.set_single_value("Sales Automation Settings", "stuck_after_minutes", 30)
		frappe.db.commit()

	def test_get_run_and_the_stuck_orders_report_say_what_the_order_waits_for(self):
		from sales_automation.api.runs import get_run
		from sales_automation.sales_automation.report.orders_stuck_between_steps import (
			orders_stuck_between_steps as report,
		)

		item_code, orders = self.waiting_orders(1, qty=4)
		answer = get_run(run_of(orders[0].name).name)
		self.assertEqual(answer["waiting_for"], f"waiting for 4 x {item_code} at {test_env().warehouse}")
		self.assertIsNotNone(answer["waiting_since"])
		self.assertEqual(answer["continuations"], 0)

		frappe.db.set_single_value("Sales Automation Settings", "stuck_after_minutes", 0)
		frappe.clear_document_cache("Sales Automation Settings", "Sales Automation Settings")
		_columns, rows = report.execute({"company": test_env().company})
		row = next(row for row in rows if row["sales_order"] == orders[0].name)
		self.assertEqual(row["state"], "Waiting")
		self.assertIn(item_code, row["error"])
		_columns, stuck = report.execute({"company": test_env().company, "state": "Stuck"})
		self.assertNotIn(orders[0].name, [row["sales_order"] for row in stuck])

	def test_an_order_waiting_past_the_rules_limit_is_left_to_a_person_with_a_notification(self):
		from frappe.utils import add_to_date, now_datetime

		item_code, orders = self.waiting_orders(1, qty=2, continue_for_days=3)
		run = run_of(orders[0].name)
		self.assertEqual(str(run.wait_until)[:10], str(add_days(run.waiting_since, 3))[:10])
		frappe.db.set_value(
			"Sales Automation Run", run.name, "wait_until", add_to_date(now_datetime(), hours=-1)
		)
		notifications = frappe.db.count("Notification Log", {"document_name": run.name})
		receive_stock(item_code, test_env().warehouse, 2, test_env().company)
		continuation.forget()
		frappe.db.commit()

		continuation.sweep()

		run.reload()
		self.assertEqual((run.status, run.continuations), ("Partially Completed", 0))
		self.assertIsNone(run.waiting_since)
		self.assertIn("left to a person", run.waiting_for)
		# one per recipient (the rule's owner, else every System Manager)
		self.assertGreater(frappe.db.count("Notification Log", {"document_name": run.name}), notifications)
		self.assertEqual(documents_of(orders[0].name)["Delivery Note"], [])
