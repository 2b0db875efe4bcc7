"""What an order's own documents and ledgers say it has been through: what is still left to do
(what_is_left, the one answer for the steps, the endpoint and the stuck-orders report), and whether the
order records more progress than its documents show (check_recorded_progress).

ERPNext keeps per_delivered, per_billed, advance_paid and the rows' delivered_qty / billed_amt up to
date as documents are submitted, and the steps read them. But those fields are plain columns that a
caller can fill when the order is made (through ERPNext's REST API, say): an order that claims to be
billed while no invoice bills it would have the cycle skip its invoice. So before a run acts on an
order that it did not make in the same call, it checks that nothing is recorded as done beyond what
submitted Delivery Notes, Sales Invoices and the advance ledger show."""

import frappe
from frappe import _
from frappe.query_builder.functions import Abs, Sum
from frappe.utils import flt

from sales_automation.constants import (
	DELIVERY_NOTE,
	INVOICE_UPDATING_STOCK,
	PAY_IN_ADVANCE,
	PAYMENT_ENTRY,
	SALES_INVOICE,
)
from sales_automation.documents import linking, rows_of, undelivered_stock_rows
from sales_automation.exceptions import InvalidStateError

# what ERPNext's own rounding of a percentage or a quantity may leave between the two
QTY_TOLERANCE = 1e-6
AMOUNT_TOLERANCE = 0.01


def what_is_left(sales_order, rule=None, messages: dict | None = None) -> list[dict]:
	"""What the order (documents.order_state) still needs of what `rule` asks for (everything, when no
	rule), and why: [{"what": "delivery" | "billing" | "payment", "why": ...}]. `messages` ({step:
	message}) give the why where a step said it."""
	messages = messages or {}
	left = []
	# an order that skips the Delivery Note (ERPNext's skip_delivery_note) is delivered by its invoice
	skips_note = sales_order.get("skip_delivery_note")
	wants = frappe._dict(
		delivery=not rule
		or (
			rule.create_sales_invoice
			if skips_note
			else rule.create_delivery_note or rule.invoice_source == INVOICE_UPDATING_STOCK
		),
		billing=not rule or (rule.create_sales_invoice and rule.submit_sales_invoice),
		payment=not rule or (rule.create_payment_entry and rule.submit_payment_entry),
	)
	rows = undelivered_stock_rows(sales_order.lines) if wants.delivery else []
	if rows:
		step = SALES_INVOICE if skips_note or (rule and not rule.create_delivery_note) else DELIVERY_NOTE
		left.append(
			{
				"what": "delivery",
				"why": messages.get(step)
				or _("{0} not delivered").format(", ".join(row.item_code for row in rows)),
			}
		)
	if wants.billing and flt(sales_order.per_billed) < 100:
		left.append(
			{
				"what": "billing",
				"why": messages.get(SALES_INVOICE)
				or _("{0}% of the order is billed").format(flt(sales_order.per_billed, 2)),
			}
		)
	outstanding = unpaid(sales_order, rule) if wants.payment else 0
	if outstanding > 0.005:
		left.append(
			{
				"what": "payment",
				"why": messages.get(PAYMENT_ENTRY)
				or _("{0} outstanding on the order's invoices").format(flt(outstanding, 2)),
			}
		)
	return left


def unpaid(sales_order, rule=None) -> float:
	"""What the customer still owes on the order's submitted invoices; for a rule that pays in advance
	and an order not billed yet, on the order itself."""
	outstanding = rows_of(
		SALES_INVOICE,
		filters={"name": ["in", linking(SALES_INVOICE, "sales_order", sales_order.name, 1)]},
		fields=["outstanding_amount"],
		pluck=True,
	)
	if not outstanding and rule and rule.payment_against == PAY_IN_ADVANCE:
		return flt(sales_order.rounded_total or sales_order.grand_total) - flt(sales_order.advance_paid)
	return sum(flt(value) for value in outstanding)


def check_recorded_progress(sales_order_name: str) -> None:
	"""InvalidStateError naming the field when the order records more progress than its documents."""
	order = frappe.db.get_value(
		"Sales Order",
		sales_order_name,
		["name", "company", "per_delivered", "per_billed", "advance_paid"],
		as_dict=True,
	)
	rows = frappe.get_all(
		"Sales Order Item",
		filters={"parent": sales_order_name, "parenttype": "Sales Order"},
		fields=["name", "idx", "qty", "amount", "delivered_qty", "billed_amt", "delivered_by_supplier"],
		order_by="idx asc",
	)
	if not (
		flt(order.per_delivered)
		or flt(order.per_billed)
		or flt(order.advance_paid)
		or any(flt(row.delivered_qty) or flt(row.billed_amt) for row in rows)
	):
		return  # nothing recorded as done: nothing to believe
	delivered = delivered_by_documents(sales_order_name)
	for row in rows:
		if row.delivered_by_supplier:
			# drop-shipped: the supplier's delivery is recorded through the Purchase Order, not here
			delivered[row.name] = flt(row.delivered_qty)
	billed = billed_by_documents(sales_order_name)
	for row in rows:
		if flt(row.delivered_qty) > delivered.get(row.name, 0) + QTY_TOLERANCE:
			refuse(
				order.name,
				f"items[{row.idx - 1}].delivered_qty",
				row.delivered_qty,
				delivered.get(row.name, 0),
			)
		if flt(row.billed_amt) > billed.get(row.name, 0) + AMOUNT_TOLERANCE:
			refuse(order.name, f"items[{row.idx - 1}].billed_amt", row.billed_amt, billed.get(row.name, 0))
	total_qty = sum(flt(row.qty) for row in rows)
	total_amount = sum(flt(row.amount) for row in rows)
	if total_qty:
		per_delivered = 100 * sum(min(delivered.get(row.name, 0), flt(row.qty)) for row in rows) / total_qty
		if flt(order.per_delivered) > per_delivered + AMOUNT_TOLERANCE:
			refuse(order.name, "per_delivered", order.per_delivered, flt(per_delivered, 2))
	if total_amount:
		per_billed = 100 * sum(min(billed.get(row.name, 0), flt(row.amount)) for row in rows) / total_amount
		if flt(order.per_billed) > per_billed + AMOUNT_TOLERANCE:
			refuse(order.name, "per_billed", order.per_billed, flt(per_billed, 2))
	advance = advance_by_ledger(order)
	if flt(order.advance_paid) > advance + AMOUNT_TOLERANCE:
		refuse(order.name, "advance_paid", order.advance_paid, advance)


def refuse(sales_order_name: str, field: str, recorded, shown):
	error = InvalidStateError(
		_(
			"Sales Order {0} records {1} = {2}, but its submitted documents show {3}; the cycle does not act on progress its documents do not show"
		).format(sales_order_name, field, recorded, shown)
	)
	error.field = f"sales_order.{field}"
	raise error


def delivered_by_documents(sales_order_name: str) -> dict[str, float]:
	"""Qty delivered per order row by submitted Delivery Notes and stock-updating invoices (returns
	left out: ERPNext tracks them as returned_qty)."""
	delivered = {}
	note_item = frappe.qb.DocType("Delivery Note Item")
	note = frappe.qb.DocType("Delivery Note")
	invoice_item = frappe.qb.DocType("Sales Invoice Item")
	invoice = frappe.qb.DocType("Sales Invoice")
	for query in (
		frappe.qb.from_(note_item)
		.join(note)
		.on(note.name == note_item.parent)
		.select(note_item.so_detail, Sum(note_item.qty))
		.where(
			(note_item.against_sales_order == sales_order_name)
			& (note.docstatus == 1)
			& (note.is_return == 0)
		)
		.groupby(note_item.so_detail),
		frappe.qb.from_(invoice_item)
		.join(invoice)
		.on(invoice.name == invoice_item.parent)
		.select(invoice_item.so_detail, Sum(invoice_item.qty))
		.where(
			(invoice_item.sales_order == sales_order_name)
			& (invoice.docstatus == 1)
			& (invoice.update_stock == 1)
			& (invoice.is_return == 0)
		)
		.groupby(invoice_item.so_detail),
	):
		for so_detail, qty in query.run():
			delivered[so_detail] = delivered.get(so_detail, 0) + flt(qty)
	return delivered


def billed_by_documents(sales_order_name: str) -> dict[str, float]:
	"""Amount billed per order row by submitted, non-return Sales Invoices."""
	invoice_item = frappe.qb.DocType("Sales Invoice Item")
	invoice = frappe.qb.DocType("Sales Invoice")
	rows = (
		frappe.qb.from_(invoice_item)
		.join(invoice)
		.on(invoice.name == invoice_item.parent)
		.select(invoice_item.so_detail, Sum(invoice_item.amount))
		.where(
			(invoice_item.sales_order == sales_order_name)
			& (invoice.docstatus == 1)
			& (invoice.is_return == 0)
		)
		.groupby(invoice_item.so_detail)
		.run()
	)
	return {so_detail: flt(amount) for so_detail, amount in rows}


def advance_by_ledger(order) -> float:
	"""The order's advance as ERPNext computes advance_paid: from the Advance Payment Ledger."""
	ledger = frappe.qb.DocType("Advance Payment Ledger Entry")
	amount = (
		frappe.qb.from_(ledger)
		.select(Abs(Sum(ledger.amount)))
		.where(
			(ledger.against_voucher_type == "Sales Order")
			& (ledger.against_voucher_no == order.name)
			& (ledger.company == order.company)
		)
		.run()
	)
	return flt(amount[0][0]) if amount else 0.0
