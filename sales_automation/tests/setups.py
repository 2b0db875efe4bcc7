"""ERPNext setups for the scenario tests: each helper makes (or finds) one kind of record.

Master data that several tests share (templates, the second company, exchange rates) is got or
created; what a test asserts on (items, customers, pricing rules) is new each time, with a unique name.
The documents a person makes by hand before the automation runs (a partial Delivery Note, invoice,
advance or return) are made the way the desk makes them: ERPNext's own mappers, then submit."""

import frappe
from frappe.utils import flt, nowdate

from sales_automation.setup.demo import (
	ensure_account,
	ensure_company,
	ensure_company_record,
	ensure_item,
	ensure_mode_of_payment,
	leaf_record,
	receive_stock,
)
from sales_automation.tests.factories import COMPANY, make_customer, test_env

SECOND_COMPANY = "_SA Second Company"
SECOND_ABBR = "_SA2"

# shared by every batch / serial item: the series counters keep the names unique site-wide
BATCH_SERIES = "_SAB-.#####"
SERIAL_SERIES = "_SAS-.#####"


def unique_code(prefix: str) -> str:
	return f"{prefix} {frappe.generate_hash(length=8)}"


# --- items ---------------------------------------------------------------------------------------


def make_batch_item(receipts: list[float], warehouse: str | None = None, company: str = COMPANY) -> str:
	"""A new batch item; each receipt puts its qty on hand in a batch of its own."""
	item_code = unique_code("_SA Batch Item")
	ensure_item(item_code, has_batch_no=1, create_new_batch=1, batch_number_series=BATCH_SERIES)
	for qty in receipts:
		receive_stock(item_code, warehouse or test_env().warehouse, qty, company)
	return item_code


def make_serial_item(stock_qty: float, warehouse: str | None = None, company: str = COMPANY) -> str:
	"""A new serialised item with `stock_qty` serial numbers on hand (made by the receipt)."""
	item_code = unique_code("_SA Serial Item")
	ensure_item(item_code, has_serial_no=1, serial_no_series=SERIAL_SERIES)
	if stock_qty:
		receive_stock(item_code, warehouse or test_env().warehouse, stock_qty, company)
	return item_code


def make_item_sold_in(uom: str, conversion_factor: float, stock_qty: float) -> str:
	"""A new stock item kept in Nos and sold in `uom` (e.g. a Box of 12), `stock_qty` Nos on hand."""
	ensure_uom(uom)
	item_code = unique_code("_SA UOM Item")
	ensure_item(
		item_code,
		sales_uom=uom,
		uoms=[{"uom": "Nos", "conversion_factor": 1}, {"uom": uom, "conversion_factor": conversion_factor}],
	)
	env = test_env()
	receive_stock(item_code, env.warehouse, stock_qty, env.company)
	return item_code


def make_stocked_item(warehouse: str, stock_qty: float, company: str, **extra) -> str:
	"""A new stock item with `stock_qty` on hand in `warehouse` of `company`."""
	item_code = unique_code("_SA Item")
	ensure_item(item_code, **extra)
	if stock_qty:
		receive_stock(item_code, warehouse, stock_qty, company)
	return item_code


def make_drop_ship_item(supplier: str) -> str:
	"""A new stock item the supplier ships to the customer directly (none of it on our shelves)."""
	item_code = unique_code("_SA Drop Ship Item")
	ensure_item(
		item_code,
		delivered_by_supplier=1,
		item_defaults=[
			{"company": COMPANY, "default_supplier": supplier, "default_warehouse": test_env().warehouse}
		],
	)
	return item_code


def make_product_bundle(components: dict[str, float]) -> str:
	"""A new non-stock bundle item made of `components` ({item_code: qty per bundle})."""
	bundle_item = unique_code("_SA Bundle")
	ensure_item(bundle_item, is_stock_item=0, valuation_rate=0)
	frappe.get_doc(
		{
			"doctype": "Product Bundle",
			"new_item_code": bundle_item,
			"items": [{"item_code": item_code, "qty": qty} for item_code, qty in components.items()],
		}
	).insert()
	return bundle_item


def bundle_components(item_code: str) -> dict[str, float]:
	return dict(
		frappe.get_all(
			"Product Bundle Item",
			filters={"parent": item_code, "parenttype": "Product Bundle"},
			fields=["item_code", "qty"],
			as_list=True,
		)
	)


def ensure_uom(uom: str) -> str:
	if not frappe.db.exists("UOM", uom):
		frappe.get_doc({"doctype": "UOM", "uom_name": uom, "must_be_whole_number": 1}).insert()
	return uom


# --- prices, discounts, taxes, terms -----------------------------------------------------------------


def selling_price_list() -> str:
	"""The price list a new Sales Order takes by default (Selling Settings), in the company currency."""
	price_list = frappe.db.get_single_value("Selling Settings", "selling_price_list") or "Standard Selling"
	if not frappe.db.exists("Price List", price_list):
		frappe.get_doc(
			{"doctype": "Price List", "price_list_name": price_list, "selling": 1, "currency": "USD"}
		).insert()
	return price_list


def make_item_price(item_code: str, rate: float, price_list: str | None = None) -> str:
	return (
		frappe.get_doc(
			{
				"doctype": "Item Price",
				"price_list": price_list or selling_price_list(),
				"item_code": item_code,
				"price_list_rate": rate,
				"selling": 1,
			}
		)
		.insert()
		.name
	)


def make_discount_pricing_rule(
	item_code: str, customer: str, discount_percentage: float, company: str = COMPANY
) -> str:
	"""A new selling Pricing Rule: `discount_percentage` off the price list rate of one item for one customer."""
	return (
		frappe.get_doc(
			{
				"doctype": "Pricing Rule",
				"title": unique_code("_SA Discount"),
				"apply_on": "Item Code",
				"items": [{"item_code": item_code}],
				"price_or_product_discount": "Price",
				"selling": 1,
				"applicable_for": "Customer",
				"customer": customer,
				"company": company,
				"currency": frappe.get_cached_value("Company", company, "default_currency"),
				"rate_or_discount": "Discount Percentage",
				"discount_percentage": discount_percentage,
			}
		)
		.insert()
		.name
	)


def ensure_sales_tax_template(rate: float, included_in_print_rate: bool = False, company: str = COMPANY):
	"""A Sales Taxes and Charges Template of one VAT row at `rate` % on the net total, exclusive or
	included in the rate. Returns (template name, its rows as a Sales Order carries them)."""
	abbr = frappe.get_cached_value("Company", company, "abbr")
	account = ensure_account(company, "_SA Output VAT", "Duties and Taxes", account_type="Tax")
	title = f"_SA VAT {rate:g}{' Incl' if included_in_print_rate else ''}"
	rows = [
		{
			"charge_type": "On Net Total",
			"account_head": account,
			"description": title,
			"rate": rate,
			"included_in_print_rate": int(included_in_print_rate),
		}
	]
	name = f"{title} - {abbr}"
	if not frappe.db.exists("Sales Taxes and Charges Template", name):
		frappe.get_doc(
			{"doctype": "Sales Taxes and Charges Template", "title": title, "company": company, "taxes": rows}
		).insert()
	return name, rows


def ensure_half_and_half_terms() -> str:
	"""A Payment Terms Template of two terms: 50 % due at once, 50 % in 30 days."""
	template = "_SA Half Now Half in 30 Days"
	if not frappe.db.exists("Payment Terms Template", template):
		terms = []
		for term_name, credit_days in (("_SA Half Now", 0), ("_SA Half in 30 Days", 30)):
			if not frappe.db.exists("Payment Term", term_name):
				frappe.get_doc(
					{
						"doctype": "Payment Term",
						"payment_term_name": term_name,
						"invoice_portion": 50,
						"due_date_based_on": "Day(s) after invoice date",
						"credit_days": credit_days,
					}
				).insert()
			terms.append(
				{
					"payment_term": term_name,
					"invoice_portion": 50,
					"due_date_based_on": "Day(s) after invoice date",
					"credit_days": credit_days,
				}
			)
		frappe.get_doc(
			{"doctype": "Payment Terms Template", "template_name": template, "terms": terms}
		).insert()
	return template


# --- companies, warehouses, currencies, parties ----------------------------------------------------


def ensure_warehouse(warehouse_name: str, company: str = COMPANY) -> str:
	return ensure_company_record(
		"Warehouse", company, "warehouse_name", warehouse_name, parent_warehouse="All Warehouses"
	)


def ensure_second_company() -> frappe._dict:
	"""A second company (its own chart, stores, cash account) that the cash mode of payment serves too."""
	from sales_automation.setup.demo import default_warehouse

	env = test_env()
	ensure_company(SECOND_COMPANY, SECOND_ABBR)
	cash_account = f"Cash - {SECOND_ABBR}"
	ensure_mode_of_payment(env.cash_mode, SECOND_COMPANY, cash_account, "Cash")
	return frappe._dict(
		company=SECOND_COMPANY,
		abbr=SECOND_ABBR,
		warehouse=default_warehouse(SECOND_COMPANY),
		cash_account=cash_account,
		cash_mode=env.cash_mode,
	)


def ensure_currency_exchange(from_currency: str, to_currency: str, rate: float) -> float:
	"""Today's selling rate from one currency to another (the rate already recorded for today wins)."""
	frappe.db.set_value("Currency", from_currency, "enabled", 1)
	filters = {"from_currency": from_currency, "to_currency": to_currency, "date": nowdate()}
	existing = frappe.db.get_value("Currency Exchange", filters, "exchange_rate")
	if existing:
		return flt(existing)
	frappe.get_doc(
		{"doctype": "Currency Exchange", **filters, "exchange_rate": rate, "for_selling": 1, "for_buying": 1}
	).insert()
	return rate


def make_foreign_customer(currency: str) -> str:
	"""A new customer billed in `currency`, with a receivable account in that currency as ERPNext needs."""
	receivable = ensure_account(
		COMPANY, f"_SA Debtors {currency}", "Accounts Receivable", "Receivable", currency
	)
	return make_customer(default_currency=currency, accounts=[{"company": COMPANY, "account": receivable}])


def ensure_supplier(supplier_name: str = "_SA Drop Ship Supplier") -> str:
	if not frappe.db.exists("Supplier", {"supplier_name": supplier_name}):
		frappe.get_doc(
			{
				"doctype": "Supplier",
				"supplier_name": supplier_name,
				"supplier_group": leaf_record("Supplier Group"),
			}
		).insert()
	return frappe.db.get_value("Supplier", {"supplier_name": supplier_name})


def enable_stock_reservation(test) -> None:
	"""Turn Stock Settings' stock reservation on for one test and back to what it was afterwards."""
	before = frappe.db.get_single_value("Stock Settings", "enable_stock_reservation")

	def restore():
		frappe.db.set_single_value("Stock Settings", "enable_stock_reservation", before)
		frappe.db.commit()  # nosemgrep - the scenarios commit; the setting must not outlive this test

	test.addCleanup(restore)
	frappe.db.set_single_value("Stock Settings", "enable_stock_reservation", 1)


# --- what a person did by hand before the automation ran --------------------------------------------


def deliver_by_hand(sales_order_name: str, qty: float):
	"""A submitted Delivery Note of `qty` of every line of the order, from ERPNext's mapper."""
	from erpnext.selling.doctype.sales_order.sales_order import make_delivery_note

	return submitted_with_qty(make_delivery_note(sales_order_name), qty)


def return_by_hand(delivery_note_name: str, qty: float):
	"""A submitted return Delivery Note of `qty` of every line of a delivered note."""
	from erpnext.stock.doctype.delivery_note.delivery_note import make_sales_return

	return submitted_with_qty(make_sales_return(delivery_note_name), -qty)


def invoice_by_hand(sales_order_name: str, qty: float):
	"""A submitted, unpaid Sales Invoice of `qty` of every line, made from the order (not a Delivery Note)."""
	from erpnext.selling.doctype.sales_order.sales_order import make_sales_invoice

	return submitted_with_qty(make_sales_invoice(sales_order_name), qty)


def submitted_with_qty(document, qty: float):
	"""A document ERPNext's mapper made, with every line at `qty`, inserted and submitted."""
	for row in document.items:
		row.qty = qty
	document.insert()
	document.submit()
	return document


def pay_by_hand(reference_doctype: str, reference_name: str, amount: float):
	"""A submitted cash Payment Entry of `amount` against a Sales Order (an advance) or a Sales Invoice."""
	from erpnext.accounts.doctype.payment_entry.payment_entry import get_payment_entry

	company = frappe.db.get_value(reference_doctype, reference_name, "company")
	cash_account = frappe.get_cached_value("Company", company, "default_cash_account")
	payment_entry = get_payment_entry(
		reference_doctype, reference_name, party_amount=amount, bank_account=cash_account
	)
	payment_entry.reference_no = f"HAND-{reference_name}"
	payment_entry.reference_date = nowdate()
	payment_entry.insert()
	payment_entry.submit()
	return payment_entry
