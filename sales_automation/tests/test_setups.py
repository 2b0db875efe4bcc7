"""Every common ERPNext setup completes the cycle (issue 12).

One table of setups, one runner. Each setup is run three ways: the submit hook with a Same Transaction
rule, the submit hook with a Background rule (its queued run executed in process), and the one call
`run_sales_cycle`. Orders that a person has already worked on by hand (17-21) are submitted without
automation, the manual documents are made, and then the run is started on the existing order.

Each test asserts on the database: the order's status, every invoice Paid with nothing outstanding, the
payments equal to what the customer owes, every voucher's GL balanced, and the stock ledger moved by the
delivered quantity exactly once (per item and warehouse, and per batch or serial number where used)."""

import copy
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import frappe
from frappe.query_builder.functions import Sum
from frappe.utils import add_days, flt, nowdate

from sales_automation import engine
from sales_automation.api import run_sales_cycle
from sales_automation.constants import (
	BACKGROUND,
	COMPLETED,
	DELIVERY_NOTE,
	DROP_SHIP_AFTER_SUPPLIER_DELIVERY,
	DROP_SHIP_AT_ONCE,
	PARTIALLY_COMPLETED,
	PAYMENT_ENTRY,
	QUEUED,
	SALES_INVOICE,
	SAME_TRANSACTION,
)
from sales_automation.tests import factories
from sales_automation.tests.base import AutomationTestCase
from sales_automation.tests.setups import (
	bundle_components,
	deliver_by_hand,
	enable_stock_reservation,
	ensure_currency_exchange,
	ensure_half_and_half_terms,
	ensure_sales_tax_template,
	ensure_second_company,
	ensure_supplier,
	ensure_warehouse,
	invoice_by_hand,
	make_batch_item,
	make_discount_pricing_rule,
	make_drop_ship_item,
	make_foreign_customer,
	make_item_price,
	make_item_sold_in,
	make_product_bundle,
	make_serial_item,
	make_stocked_item,
	pay_by_hand,
	return_by_hand,
	selling_price_list,
)

DN, SI, PE = DELIVERY_NOTE, SALES_INVOICE, PAYMENT_ENTRY

# how the cycle is started: test name suffix -> the rule's execution mode (the one call runs in its request)
VIA_SAME_TRANSACTION = "same_transaction"
VIA_BACKGROUND = "background"
VIA_ONE_CALL = "one_call"
PATHS = {
	VIA_SAME_TRANSACTION: SAME_TRANSACTION,
	VIA_BACKGROUND: BACKGROUND,
	VIA_ONE_CALL: SAME_TRANSACTION,
}
# ERPNext's Sales Order status when everything is delivered and billed
ORDER_COMPLETED = "Completed"


@dataclass
class Case:
	"""One setup made ready for one run: the order to place and what the run must end with."""

	customer: str
	rows: list[dict]
	order: dict = field(default_factory=dict)  # Sales Order fields besides customer and items
	rule: dict = field(default_factory=dict)  # Sales Automation Rule fields besides make_rule's
	# what a person did by hand on the submitted order before the run: (sales_order_name) -> None
	prepare: Callable | None = None
	# assertions of the setup itself: (test, sales_order, documents) -> None
	check: Callable | None = None
	run_status: str = COMPLETED
	order_status: str = ORDER_COMPLETED
	fully_billed: bool = True
	# documents the automation makes, by doctype; None: not counted
	made: dict = field(default_factory=lambda: {DN: 1, SI: 1, PE: 1})


@dataclass(frozen=True)
class Setup:
	number: int
	name: str
	exercises: str
	build: Callable  # (test) -> Case


# --- the setups ------------------------------------------------------------------------------------


def plain_stock_item(test):
	item_code = factories.make_item(stock_qty=10)
	return Case(factories.make_customer(), [{"item_code": item_code, "qty": 4, "rate": 25}])


def batch_item(test):
	item_code = make_batch_item([4, 6])
	return Case(factories.make_customer(), [{"item_code": item_code, "qty": 3, "rate": 20}])


def batch_item_across_batches(test):
	# 4 + 6 on hand in two batches: 7 cannot come out of one of them
	item_code = make_batch_item([4, 6])

	def check(test, sales_order, documents):
		moved = batch_or_serial_moves(order_stock_entries(documents.all, item_code))
		test.assertEqual(len(moved), 2, f"7 of batches of 4 and 6 come from both: {moved}")

	return Case(factories.make_customer(), [{"item_code": item_code, "qty": 7, "rate": 20}], check=check)


def serial_item(test):
	item_code = make_serial_item(stock_qty=5)
	return Case(factories.make_customer(), [{"item_code": item_code, "qty": 3, "rate": 40}])


def taxes_exclusive(test):
	template, taxes = ensure_sales_tax_template(10)
	item_code = factories.make_item(stock_qty=5)

	def check(test, sales_order, documents):
		test.assertEqual(flt(sales_order.total_taxes_and_charges), 20)
		test.assertEqual(flt(sales_order.grand_total), 220)
		for name in documents.all[SI]:
			test.assertEqual(flt(frappe.db.get_value(SI, name, "total_taxes_and_charges")), 20)

	return Case(
		factories.make_customer(),
		[{"item_code": item_code, "qty": 2, "rate": 100}],
		order={"taxes_and_charges": template, "taxes": taxes},
		check=check,
	)


def taxes_inclusive(test):
	template, taxes = ensure_sales_tax_template(10, included_in_print_rate=True)
	item_code = factories.make_item(stock_qty=5)

	def check(test, sales_order, documents):
		# 2 x 110 with 10 % included: 200 net, 20 tax, 220 to pay
		test.assertEqual(flt(sales_order.net_total), 200)
		test.assertEqual(flt(sales_order.total_taxes_and_charges), 20)
		test.assertEqual(flt(sales_order.grand_total), 220)

	return Case(
		factories.make_customer(),
		[{"item_code": item_code, "qty": 2, "rate": 110}],
		order={"taxes_and_charges": template, "taxes": taxes},
		check=check,
	)


def discounts(test):
	item_code = factories.make_item(stock_qty=5)

	def check(test, sales_order, documents):
		# 4 x (100 less 10 %) = 360, less 5 % on the order = 342
		test.assertEqual(flt(sales_order.items[0].rate), 90)
		test.assertEqual(flt(sales_order.discount_amount), 18)
		test.assertEqual(flt(sales_order.grand_total), 342)

	return Case(
		factories.make_customer(),
		[{"item_code": item_code, "qty": 4, "price_list_rate": 100, "discount_percentage": 10}],
		order={"additional_discount_percentage": 5, "apply_discount_on": "Grand Total"},
		check=check,
	)


def pricing_rule(test):
	customer = factories.make_customer()
	item_code = factories.make_item(stock_qty=5)
	make_item_price(item_code, 100)
	rule_name = make_discount_pricing_rule(item_code, customer, 20)

	def check(test, sales_order, documents):
		row = sales_order.items[0]
		test.assertIn(rule_name, row.pricing_rules or "")
		test.assertEqual(flt(row.discount_percentage), 20)
		test.assertEqual(flt(row.rate), 80)
		test.assertEqual(flt(sales_order.grand_total), 240)

	return Case(
		customer,
		[{"item_code": item_code, "qty": 3}],
		order={"selling_price_list": selling_price_list()},
		check=check,
	)


def rounded_total(test):
	# ERPNext rounds a total to its currency's smallest coin: USD's is 0.01, so nothing rounds in the
	# test company's own currency; the customer is billed in CHF, whose smallest coin is 0.05
	ensure_currency_exchange("CHF", "USD", 1.1)
	item_code = factories.make_item(stock_qty=5)

	def check(test, sales_order, documents):
		# 3 x 33.79 = 101.37, rounded to 101.35: the customer owes 101.35
		test.assertEqual(flt(sales_order.grand_total), 101.37)
		test.assertEqual(flt(sales_order.rounded_total), 101.35)
		for name in documents.all[SI]:
			test.assertEqual(flt(frappe.db.get_value(SI, name, "rounded_total")), 101.35)

	return Case(
		make_foreign_customer("CHF"),
		[{"item_code": item_code, "qty": 3, "rate": 33.79}],
		order={"currency": "CHF", "selling_price_list": selling_price_list(), "disable_rounded_total": 0},
		check=check,
	)


def selling_uom(test):
	item_code = make_item_sold_in("Box", 12, stock_qty=30)

	def check(test, sales_order, documents):
		row = sales_order.items[0]
		test.assertEqual((row.uom, flt(row.conversion_factor), flt(row.stock_qty)), ("Box", 12, 24))

	return Case(
		factories.make_customer(),
		[{"item_code": item_code, "qty": 2, "uom": "Box", "rate": 120}],
		check=check,
	)


def two_warehouses(test):
	env = factories.test_env()
	overflow = ensure_warehouse("_SA Overflow")
	first = factories.make_item(stock_qty=5)
	second = make_stocked_item(overflow, 5, env.company)
	return Case(
		factories.make_customer(),
		[
			{"item_code": first, "qty": 2, "rate": 30, "warehouse": env.warehouse},
			{"item_code": second, "qty": 3, "rate": 20, "warehouse": overflow},
		],
	)


def payment_terms(test):
	template = ensure_half_and_half_terms()
	item_code = factories.make_item(stock_qty=5)

	def check(test, sales_order, documents):
		test.assertEqual([flt(row.payment_amount) for row in sales_order.payment_schedule], [100, 100])
		for name in documents.made[SI]:
			test.assertEqual(frappe.db.get_value(SI, name, "payment_terms_template"), template)

	return Case(
		factories.make_customer(),
		[{"item_code": item_code, "qty": 2, "rate": 100}],
		order={"payment_terms_template": template},
		check=check,
	)


def stock_reservation(test):
	enable_stock_reservation(test)
	item_code = factories.make_item(stock_qty=10)

	def check(test, sales_order, documents):
		entries = frappe.get_all(
			"Stock Reservation Entry",
			filters={"voucher_type": "Sales Order", "voucher_no": sales_order.name, "docstatus": 1},
			fields=["reserved_qty", "delivered_qty", "status"],
		)
		test.assertTrue(entries, "the order reserved its stock on submit")
		test.assertEqual(sum(flt(row.reserved_qty) for row in entries), 4)
		test.assertEqual(sum(flt(row.delivered_qty) for row in entries), 4)
		test.assertEqual({row.status for row in entries}, {"Delivered"})
		reserved = frappe.db.get_value(
			"Bin", {"item_code": item_code, "warehouse": factories.test_env().warehouse}, "reserved_stock"
		)
		test.assertEqual(flt(reserved), 0)

	return Case(
		factories.make_customer(),
		[{"item_code": item_code, "qty": 4, "rate": 25}],
		order={"reserve_stock": 1},
		check=check,
	)


def second_company(test):
	company = ensure_second_company()
	item_code = make_stocked_item(company.warehouse, 5, company.company)

	def check(test, sales_order, documents):
		for doctype, names in documents.all.items():
			for name in names:
				test.assertEqual(frappe.db.get_value(doctype, name, "company"), company.company, name)
		for name in documents.made[PE]:
			test.assertEqual(frappe.db.get_value(PE, name, "paid_to"), company.cash_account)

	return Case(
		factories.make_customer(),
		[{"item_code": item_code, "qty": 2, "rate": 50}],
		order={"company": company.company, "set_warehouse": company.warehouse},
		rule={"order_company": company.company, "mode_of_payment": company.cash_mode},
		check=check,
	)


def two_currencies(test):
	rate = ensure_currency_exchange("EUR", "USD", 1.25)
	item_code = factories.make_item(stock_qty=5)

	def check(test, sales_order, documents):
		test.assertEqual((sales_order.currency, flt(sales_order.conversion_rate)), ("EUR", rate))
		for name in documents.all[SI]:
			test.assertEqual(frappe.db.get_value(SI, name, "currency"), "EUR")
		for name in documents.made[PE]:
			payment_entry = frappe.get_doc(PE, name)
			test.assertEqual(flt(payment_entry.source_exchange_rate), rate)
			test.assertEqual(flt(payment_entry.received_amount, 2), flt(payment_entry.paid_amount * rate, 2))

	return Case(
		make_foreign_customer("EUR"),
		[{"item_code": item_code, "qty": 2, "rate": 100}],
		order={"currency": "EUR", "selling_price_list": selling_price_list()},
		check=check,
	)


def product_bundle(test):
	first, second = factories.make_item(stock_qty=10), factories.make_item(stock_qty=10)
	bundle = make_product_bundle({first: 2, second: 1})

	def check(test, sales_order, documents):
		test.assertEqual(packed_quantities(sales_order), {first: 6, second: 3})

	return Case(factories.make_customer(), [{"item_code": bundle, "qty": 3, "rate": 150}], check=check)


def bundle_with_batch_component(test):
	batch_component = make_batch_item([3, 5])
	plain_component = factories.make_item(stock_qty=10)
	bundle = make_product_bundle({batch_component: 2, plain_component: 1})

	def check(test, sales_order, documents):
		test.assertEqual(packed_quantities(sales_order), {batch_component: 6, plain_component: 3})

	return Case(factories.make_customer(), [{"item_code": bundle, "qty": 3, "rate": 150}], check=check)


def existing_order(prepare, check=None, **expected):
	"""An order of 10 x 10 worked on by hand (`prepare`) before the automation runs."""
	item_code = factories.make_item(stock_qty=10)
	return Case(
		factories.make_customer(),
		[{"item_code": item_code, "qty": 10, "rate": 10}],
		prepare=prepare,
		check=check,
		**expected,
	)


def partly_delivered_by_hand(test):
	def check(test, sales_order, documents):
		assert_every_delivery_note_billed(test, documents)

	return existing_order(lambda name: deliver_by_hand(name, 4), check)


def partly_invoiced_by_hand(test):
	def check(test, sales_order, documents):
		assert_one_payment_for_every_invoice(test, documents)

	return existing_order(lambda name: invoice_by_hand(name, 4), check)


def advance_paid_by_hand(test):
	def check(test, sales_order, documents):
		(sales_invoice,) = [frappe.get_doc(SI, name) for name in documents.made[SI]]
		test.assertEqual(sum(flt(row.allocated_amount) for row in sales_invoice.advances), 40)

	return existing_order(lambda name: pay_by_hand("Sales Order", name, 40), check)


def delivered_invoiced_and_paid_by_hand(test):
	def prepare(sales_order_name):
		deliver_by_hand(sales_order_name, 4)
		sales_invoice = invoice_by_hand(sales_order_name, 3)
		pay_by_hand("Sales Invoice", sales_invoice.name, 15)

	def check(test, sales_order, documents):
		assert_one_payment_for_every_invoice(test, documents)

	return existing_order(prepare, check)


def partly_returned(test):
	def prepare(sales_order_name):
		delivery_note = deliver_by_hand(sales_order_name, 6)
		return_by_hand(delivery_note.name, 2)

	def check(test, sales_order, documents):
		assert_every_delivery_note_billed(test, documents)

	return existing_order(prepare, check)


def drop_ship_line(test, drop_ship_invoicing: str, **expected):
	supplier = ensure_supplier()
	drop_ship_item = make_drop_ship_item(supplier)
	stock_item = factories.make_item(stock_qty=5)

	def check(test, sales_order, documents):
		row = next(row for row in sales_order.items if row.item_code == drop_ship_item)
		test.assertEqual(flt(row.delivered_qty), 0)
		billed = 300 if drop_ship_invoicing == DROP_SHIP_AT_ONCE else 0
		test.assertEqual(flt(row.billed_amt), billed)
		test.assertFalse(
			frappe.db.exists("Stock Ledger Entry", {"item_code": drop_ship_item, "is_cancelled": 0})
		)

	return Case(
		factories.make_customer(),
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
		rule={"drop_ship_invoicing": drop_ship_invoicing},
		check=check,
		**expected,
	)


def drop_ship_invoiced_at_once(test):
	# the supplier delivers later: ERPNext shows the billed order as To Deliver
	return drop_ship_line(test, DROP_SHIP_AT_ONCE, order_status="To Deliver", made={DN: 1, SI: None, PE: 1})


def drop_ship_invoiced_after_supplier_delivery(test):
	return drop_ship_line(
		test,
		DROP_SHIP_AFTER_SUPPLIER_DELIVERY,
		run_status=PARTIALLY_COMPLETED,
		order_status="To Deliver and Bill",
		fully_billed=False,
	)


def service_line(test):
	service = factories.make_item(is_stock_item=0)
	stock_item = factories.make_item(stock_qty=5)
	return Case(
		factories.make_customer(),
		[
			{"item_code": stock_item, "qty": 2, "rate": 30},
			{"item_code": service, "qty": 1, "rate": 60},
		],
	)


SETUPS = (
	Setup(1, "plain_stock_item", "one stock item", plain_stock_item),
	Setup(2, "batch_item", "a batch item, one batch enough", batch_item),
	Setup(3, "serial_item", "a serialised item", serial_item),
	Setup(4, "taxes_exclusive", "a Sales Taxes and Charges Template, 10 % on top", taxes_exclusive),
	Setup(5, "taxes_inclusive", "10 % tax included in the rate", taxes_inclusive),
	Setup(6, "discounts", "a line discount and an additional discount on the order", discounts),
	Setup(7, "pricing_rule", "a Pricing Rule giving the customer 20 % off the price list", pricing_rule),
	Setup(
		8,
		"rounded_total",
		"a total that rounds to the currency's coin (CHF 101.37 owed as 101.35)",
		rounded_total,
	),
	Setup(9, "selling_uom", "sold in Boxes of 12 of an item stocked in Nos", selling_uom),
	Setup(10, "two_warehouses", "two lines from two warehouses", two_warehouses),
	Setup(11, "payment_terms", "a payment terms template of two 50 % terms", payment_terms),
	Setup(12, "stock_reservation", "stock reserved on submit (Stock Settings)", stock_reservation),
	Setup(13, "second_company", "an order of a second company", second_company),
	Setup(14, "two_currencies", "a customer billed in EUR by a USD company", two_currencies),
	Setup(15, "product_bundle", "a product bundle of two stock items", product_bundle),
	Setup(16, "bundle_with_batch", "a product bundle with a batch component", bundle_with_batch_component),
	Setup(17, "partly_delivered_by_hand", "40 % delivered by hand before the run", partly_delivered_by_hand),
	Setup(18, "partly_invoiced_by_hand", "40 % invoiced by hand from the order", partly_invoiced_by_hand),
	Setup(19, "advance_paid_by_hand", "40 % paid by hand in advance", advance_paid_by_hand),
	Setup(
		20,
		"delivered_invoiced_and_paid_by_hand",
		"part delivered, part invoiced from the order and part of that paid, all by hand",
		delivered_invoiced_and_paid_by_hand,
	),
	Setup(21, "partly_returned", "60 % delivered, 20 % of it returned, before the run", partly_returned),
	Setup(
		22,
		"drop_ship_at_once",
		"a drop-ship line next to a stock line, invoiced at once",
		drop_ship_invoiced_at_once,
	),
	Setup(23, "service_line", "a service line next to a stock line", service_line),
	Setup(
		24,
		"drop_ship_after_supplier_delivery",
		"a drop-ship line that waits for the supplier's delivery to be billed",
		drop_ship_invoiced_after_supplier_delivery,
	),
	Setup(
		25,
		"batch_item_across_batches",
		"a batch item whose order takes two batches (one row, FIFO)",
		batch_item_across_batches,
	),
)


# --- reading the outcome ---------------------------------------------------------------------------


def packed_quantities(sales_order) -> dict:
	quantities = defaultdict(float)
	for row in sales_order.packed_items:
		quantities[row.item_code] += flt(row.qty)
	return dict(quantities)


def items_of(rows: list[dict]) -> set[str]:
	"""The item codes an order of `rows` can move: its lines and their bundles' components."""
	item_codes = set()
	for row in rows:
		item_codes.add(row["item_code"])
		item_codes.update(bundle_components(row["item_code"]))
	return item_codes


def stock_levels(item_codes) -> dict:
	return {
		(row.item_code, row.warehouse): flt(row.actual_qty)
		for row in frappe.get_all(
			"Bin",
			filters={"item_code": ["in", list(item_codes)]},
			fields=["item_code", "warehouse", "actual_qty"],
		)
	}


def expected_outflow(sales_order) -> dict:
	"""What delivering the whole order takes out of stock, in stock units by (item, warehouse):
	its stock lines and its bundles' components, not what the supplier ships."""
	bundled = {row.parent_detail_docname for row in sales_order.packed_items}
	outflow = defaultdict(float)
	for row in sales_order.items:
		if row.delivered_by_supplier or row.name in bundled:
			continue
		if frappe.get_cached_value("Item", row.item_code, "is_stock_item"):
			outflow[(row.item_code, row.warehouse)] += flt(row.stock_qty)
	for row in sales_order.packed_items:
		outflow[(row.item_code, row.warehouse)] += flt(row.qty)
	return {key: flt(qty, 6) for key, qty in outflow.items() if qty}


def order_stock_entries(documents: dict, item_code: str | None = None) -> list:
	"""The live stock ledger entries of the order's Delivery Notes and stock-updating invoices."""
	vouchers = documents[DN] + [
		name for name in documents[SI] if frappe.db.get_value(SI, name, "update_stock")
	]
	filters = {"voucher_no": ["in", vouchers or [""]], "is_cancelled": 0}
	if item_code:
		filters["item_code"] = item_code
	return stock_entries(filters)


def stock_entries(filters: dict) -> list:
	return frappe.get_all(
		"Stock Ledger Entry",
		filters=filters,
		fields=[
			"voucher_no",
			"item_code",
			"warehouse",
			"actual_qty",
			"serial_and_batch_bundle",
			"batch_no",
			"serial_no",
		],
	)


def batch_or_serial_moves(entries) -> dict:
	"""Net qty moved per batch (or per serial number) by the given stock ledger entries."""
	moved = defaultdict(float)
	for entry in entries:
		if entry.serial_and_batch_bundle:
			for row in frappe.get_all(
				"Serial and Batch Entry",
				filters={"parent": entry.serial_and_batch_bundle, "parenttype": "Serial and Batch Bundle"},
				fields=["batch_no", "serial_no", "qty"],
			):
				moved[row.serial_no or row.batch_no] += math.copysign(abs(flt(row.qty)), entry.actual_qty)
		elif entry.serial_no:
			for serial_no in entry.serial_no.split():
				moved[serial_no] += math.copysign(1, entry.actual_qty)
		elif entry.batch_no:
			moved[entry.batch_no] += flt(entry.actual_qty)
	return {key: flt(qty, 6) for key, qty in moved.items() if flt(qty, 6)}


def assert_every_delivery_note_billed(test, documents):
	"""The run's invoice bills every delivered note of the order, the ones made by hand included."""
	delivered = {name for name in documents.all[DN] if not frappe.db.get_value(DN, name, "is_return")}
	billed = set(
		frappe.get_all(
			"Sales Invoice Item",
			filters={"parent": ["in", documents.made[SI] or [""]], "parenttype": SI},
			pluck="delivery_note",
		)
	)
	test.assertEqual(delivered - billed, set(), "delivered notes the run's invoice did not bill")


def assert_one_payment_for_every_invoice(test, documents):
	"""The run's one payment settles every invoice of the order, the one made by hand included."""
	(payment_entry,) = documents.made[PE]
	paid = set(
		frappe.get_all(
			"Payment Entry Reference",
			filters={"parent": payment_entry, "parenttype": PE, "reference_doctype": SI},
			pluck="reference_name",
		)
	)
	unpaid_before = {name for name in documents.manual[SI] if flt(documents.outstanding_before.get(name)) > 0}
	test.assertEqual(paid, set(documents.made[SI]) | unpaid_before)


# --- the runner ------------------------------------------------------------------------------------


class TestSetups(AutomationTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		frappe.db.commit()  # nosemgrep - the one call rolls back on failure; the fixtures must survive it

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.local.response.pop("error", None)

	def run_setup(self, setup: Setup, path: str):
		case = setup.build(self)
		warehouse = case.order.get("set_warehouse", self.env.warehouse)
		rows = [{"warehouse": warehouse, **row} for row in case.rows]
		item_codes = items_of(rows)
		stock_before = stock_levels(item_codes)
		rule = factories.make_rule(case.customer, execution_mode=PATHS[path], **case.rule)
		frappe.db.commit()  # nosemgrep - fixtures outlive the one call's rollback and the background commits
		try:
			outcome = self.run_cycle(path, case, rows, rule)
		except Exception:
			frappe.db.rollback()
			raise
		self.assert_cycle(case, outcome, item_codes, stock_before)

	def run_cycle(self, path: str, case: Case, rows: list[dict], rule) -> frappe._dict:
		"""Place the order (and what was done by hand) and run the cycle the way `path` says."""
		manual = {DN: [], SI: [], PE: []}
		outstanding_before = {}
		if case.prepare:
			sales_order = factories.make_sales_order(
				rows, customer=case.customer, automate=False, **case.order
			)
			case.prepare(sales_order.name)
			manual = factories.documents_of(sales_order.name)
			outstanding_before = {
				name: frappe.db.get_value(SI, name, "outstanding_amount") for name in manual[SI]
			}
			frappe.db.commit()  # nosemgrep - what was done by hand is there before the run, as in life
			if path == VIA_ONE_CALL:
				answer = run_sales_cycle(sales_order=sales_order.name, rule=rule.name)
				return one_call_outcome(answer, manual, outstanding_before)
			run = engine.start_for_order(
				sales_order, trigger="Manual", rule_name=rule.name, execution_mode=PATHS[path]
			)
		else:
			if path == VIA_ONE_CALL:
				answer = run_sales_cycle(order=order_payload(case, rows), rule=rule.name)
				return one_call_outcome(answer, manual, outstanding_before)
			sales_order = factories.make_sales_order(rows, customer=case.customer, **case.order)
			run = factories.run_of(sales_order.name)
		self.assertIsNotNone(run, "the rule started no run")
		if path == VIA_BACKGROUND:
			self.assertEqual(run.status, QUEUED)
			engine.process_run(run.name, drain_seconds=0)
		run.reload()
		return frappe._dict(
			sales_order=sales_order.name,
			status=run.status,
			left_open=None,
			detail=" | ".join(
				filter(
					None,
					[
						run.error,
						run.get("left_open"),
						*(f"{row.step}: {row.message}" for row in run.steps if row.message),
					],
				)
			),
			run=run,
			manual=manual,
			outstanding_before=outstanding_before,
		)

	# --- assertions --------------------------------------------------------------------------------

	def assert_cycle(self, case: Case, outcome, item_codes: set[str], stock_before: dict):
		sales_order = frappe.get_doc("Sales Order", outcome.sales_order)
		self.assertEqual(outcome.status, case.run_status, f"{sales_order.name}: {outcome.detail}")
		if case.run_status == PARTIALLY_COMPLETED:
			self.assert_left_open(outcome)
		self.assertEqual(sales_order.status, case.order_status, outcome.detail)
		docs = factories.documents_of(sales_order.name)
		documents = frappe._dict(
			all=docs,
			manual=outcome.manual,
			made={doctype: sorted(set(docs[doctype]) - set(outcome.manual[doctype])) for doctype in docs},
			outstanding_before=outcome.outstanding_before,
		)
		self.assert_documents_made(case, documents)
		self.assert_billed_and_paid(case, sales_order, docs)
		self.assert_gl_balanced(docs)
		self.assert_stock_moved_once(sales_order, docs, item_codes, stock_before)
		if case.check:
			case.check(self, sales_order, documents)

	def assert_left_open(self, outcome):
		if outcome.run is None:
			self.assertTrue(outcome.left_open, "the answer says what is left open")
			for entry in outcome.left_open:
				self.assertTrue(entry.get("what") and entry.get("why"), entry)
		else:
			self.assertTrue(
				outcome.run.get("left_open")
				or outcome.run.error
				or any(row.status == "Skipped" and row.message for row in outcome.run.steps),
				"the run says what is left open",
			)

	def assert_documents_made(self, case: Case, documents):
		for doctype, names in documents.all.items():
			for name in names:
				self.assertEqual(frappe.db.get_value(doctype, name, "docstatus"), 1, f"{doctype} {name}")
		made = {doctype: len(names) for doctype, names in documents.made.items()}
		expected = {doctype: count for doctype, count in case.made.items() if count is not None}
		self.assertEqual({doctype: made[doctype] for doctype in expected}, expected)

	def assert_billed_and_paid(self, case: Case, sales_order, docs: dict):
		invoices = [frappe.get_doc(SI, name) for name in docs[SI]]
		self.assertTrue(invoices, "the order is invoiced")
		for sales_invoice in invoices:
			self.assertEqual(
				(sales_invoice.status, flt(sales_invoice.outstanding_amount)),
				("Paid", 0),
				sales_invoice.name,
			)
		billed = sum(flt(row.rounded_total or row.grand_total) for row in invoices)
		if case.fully_billed:
			self.assertEqual(flt(sales_order.per_billed), 100)
			# nothing billed twice: the invoices add up to the order
			self.assertAlmostEqual(
				sum(flt(row.grand_total) for row in invoices), flt(sales_order.grand_total), places=2
			)
			owed = flt(sales_order.rounded_total) or flt(sales_order.grand_total)
		else:
			self.assertLess(flt(sales_order.per_billed), 100)
			owed = billed
		payments = [frappe.get_doc(PE, name) for name in docs[PE]]
		for payment_entry in payments:
			self.assertEqual(payment_entry.payment_type, "Receive")
			self.assertEqual(payment_entry.paid_from_account_currency, sales_order.currency)
			self.assertEqual(flt(payment_entry.unallocated_amount), 0, payment_entry.name)
		self.assertAlmostEqual(sum(flt(row.paid_amount) for row in payments), owed, places=2)

	def assert_gl_balanced(self, docs: dict):
		vouchers = [name for names in docs.values() for name in names]
		entry = frappe.qb.DocType("GL Entry")
		totals = {
			voucher_no: (flt(debit, 2), flt(credit, 2))
			for voucher_no, debit, credit in frappe.qb.from_(entry)
			.select(entry.voucher_no, Sum(entry.debit), Sum(entry.credit))
			.where(entry.voucher_no.isin(vouchers or [""]) & (entry.is_cancelled == 0))
			.groupby(entry.voucher_no)
			.run()
		}
		for name in docs[SI] + docs[PE]:
			self.assertIn(name, totals, f"{name} posted to the ledger")
		for name, (debit, credit) in totals.items():
			self.assertEqual(debit, credit, f"GL of {name}")

	def assert_stock_moved_once(self, sales_order, docs: dict, item_codes: set[str], stock_before: dict):
		expected = expected_outflow(sales_order)
		entries = order_stock_entries(docs)
		moved = defaultdict(float)
		for entry in entries:
			moved[(entry.item_code, entry.warehouse)] -= flt(entry.actual_qty)
		self.assertEqual({key: flt(qty, 6) for key, qty in moved.items() if flt(qty, 6)}, expected)
		# and nowhere else: the bins moved by the same, so no other voucher moved these items
		stock_after = stock_levels(item_codes)
		changed = {
			key: flt(stock_before.get(key, 0) - stock_after.get(key, 0), 6)
			for key in set(stock_before) | set(stock_after)
		}
		self.assertEqual({key: qty for key, qty in changed.items() if qty}, expected)
		for (item_code, warehouse), qty in expected.items():
			has_batch_no, has_serial_no = frappe.get_cached_value(
				"Item", item_code, ["has_batch_no", "has_serial_no"]
			)
			own = [row for row in entries if (row.item_code, row.warehouse) == (item_code, warehouse)]
			if has_serial_no:
				self.assert_serial_nos_delivered_once(item_code, warehouse, own, qty)
			elif has_batch_no:
				self.assert_batches_moved_once(item_code, warehouse, own, qty, stock_after)

	def assert_batches_moved_once(self, item_code, warehouse, own_entries, qty, stock_after):
		moved = batch_or_serial_moves(own_entries)
		self.assertAlmostEqual(-sum(moved.values()), qty, places=6)
		for batch_no in moved:
			self.assertEqual(frappe.db.get_value("Batch", batch_no, "item"), item_code)
		# every batch still holds what it should: nothing taken twice, none below zero
		balances = batch_or_serial_moves(
			stock_entries({"item_code": item_code, "warehouse": warehouse, "is_cancelled": 0})
		)
		self.assertTrue(all(balance >= 0 for balance in balances.values()), balances)
		self.assertAlmostEqual(sum(balances.values()), stock_after.get((item_code, warehouse), 0), places=6)

	def assert_serial_nos_delivered_once(self, item_code, warehouse, own_entries, qty):
		moved = batch_or_serial_moves(own_entries)
		self.assertEqual(sorted(moved.values()), [-1] * int(qty), moved)
		for serial_no in moved:
			serial = frappe.db.get_value("Serial No", serial_no, ["item_code", "warehouse"], as_dict=True)
			self.assertEqual(serial.item_code, item_code)
			self.assertFalse(serial.warehouse, f"{serial_no} left {serial.warehouse}")
		in_stock = frappe.db.count("Serial No", {"item_code": item_code, "warehouse": warehouse})
		self.assertEqual(
			in_stock,
			flt(frappe.db.get_value("Bin", {"item_code": item_code, "warehouse": warehouse}, "actual_qty")),
		)


def order_payload(case: Case, rows: list[dict]) -> dict:
	"""The order as an external system sends it to the one call."""
	env = factories.test_env()
	return {
		"customer": case.customer,
		"company": env.company,
		"delivery_date": add_days(nowdate(), 5),
		"set_warehouse": env.warehouse,
		**copy.deepcopy(case.order),
		"items": copy.deepcopy(rows),
	}


def one_call_outcome(answer: dict, manual: dict, outstanding_before: dict) -> frappe._dict:
	return frappe._dict(
		sales_order=answer["sales_order"],
		status=answer["status"],
		left_open=answer.get("left_open"),
		detail=str(answer.get("left_open") or ""),
		run=None,
		manual=manual,
		outstanding_before=outstanding_before,
	)


def scenario_test(setup: Setup, path: str):
	def test(self):
		self.run_setup(setup, path)

	test.__doc__ = f"{setup.number}. {setup.exercises} ({path.replace('_', ' ')})"
	return test


for _setup in SETUPS:
	for _path in PATHS:
		setattr(
			TestSetups, f"test_{_setup.number:02d}_{_setup.name}_via_{_path}", scenario_test(_setup, _path)
		)
