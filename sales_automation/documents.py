"""Reading the order and its documents, and ERPNext's mappers shaped for the steps: what an order
holds, what links to it, and the unsaved documents the steps save."""

from typing import TYPE_CHECKING

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import flt

from sales_automation.constants import PAYMENT_ENTRY, SALES_INVOICE
from sales_automation.errors import contained

if TYPE_CHECKING:
	from erpnext.accounts.doctype.payment_entry.payment_entry import PaymentEntry
	from erpnext.accounts.doctype.sales_invoice.sales_invoice import SalesInvoice
	from erpnext.stock.doctype.delivery_note.delivery_note import DeliveryNote

ORDER_FIELDS = (
	"name",
	"company",
	"customer",
	"po_no",
	"currency",
	"grand_total",
	"rounded_total",
	"advance_paid",
	"per_billed",
	"payment_terms_template",
	"skip_delivery_note",
	"status",
)


ORDER_ITEM_FIELDS = (
	"name",
	"item_code",
	"qty",
	"rate",
	"amount",
	"billed_amt",
	"delivered_qty",
	"warehouse",
	"conversion_factor",
	"delivered_by_supplier",
)


def order_state(sales_order_name: str) -> frappe._dict | None:
	"""The order's ORDER_FIELDS with its rows' ORDER_ITEM_FIELDS as `lines` (by idx), in one query; None
	when there is no such order."""
	Order, Item = frappe.qb.DocType("Sales Order"), frappe.qb.DocType("Sales Order Item")
	rows = (
		frappe.qb.from_(Order)
		.left_join(Item)
		.on((Item.parent == Order.name) & (Item.parenttype == "Sales Order"))
		.select(
			*(Order[field] for field in ORDER_FIELDS),
			*(Item[field].as_(f"line_{field}") for field in ORDER_ITEM_FIELDS),
		)
		.where(Order.name == sales_order_name)
		.orderby(Item.idx)
		.run(as_dict=True)
	)
	if not rows:
		return None
	sales_order = frappe._dict({field: rows[0][field] for field in ORDER_FIELDS})
	# "lines", not "items": a frappe._dict key named items would hide dict.items
	sales_order["lines"] = [
		frappe._dict({field: row[f"line_{field}"] for field in ORDER_ITEM_FIELDS})
		for row in rows
		if row.line_name
	]
	return sales_order


def rows_of(doctype: str, filters: dict, fields, order_by: str | None = None, **options) -> list:
	"""frappe.get_all's rows (as dicts, or a list of one field with pluck=True) from Frappe's query
	builder: the same filters, without get_all's list-view machinery, which costs a step more than the
	query. For the engine's own reads, which see every record (get_all ignores permissions too).
	A filter `["in", linking(...)]` is a subquery."""
	pluck = options.pop("pluck", False)
	query = frappe.qb.get_query(doctype, fields=fields, filters=filters, order_by=order_by, **options)
	return query.run(pluck=True) if pluck else query.run(as_dict=True)


def order_totals(sales_order) -> dict:
	"""Grand total, paid and outstanding of an order, over its submitted invoices and advances."""
	amounts = order_amounts(sales_order)
	return {key: amounts[key] for key in ("currency", "grand_total", "paid", "outstanding")}


def order_amounts(sales_order) -> dict:
	"""order_totals, and what the order's submitted invoices bill (`invoiced`; credit notes count
	negative), from one read of the invoices."""
	grand_total = flt(sales_order.rounded_total or sales_order.grand_total)
	invoices = rows_of(
		"Sales Invoice",
		filters={"name": ["in", linking("Sales Invoice", "sales_order", sales_order.name, docstatus=1)]},
		fields=["outstanding_amount", "rounded_total", "grand_total"],
	)
	billed = sum(flt(row.rounded_total or row.grand_total) for row in invoices)
	if invoices:
		outstanding = sum(flt(row.outstanding_amount) for row in invoices) + max(grand_total - billed, 0)
	else:
		outstanding = grand_total - flt(sales_order.advance_paid)
	return {
		"currency": sales_order.currency,
		"grand_total": grand_total,
		"paid": flt(grand_total - outstanding, 2),
		"outstanding": flt(outstanding, 2),
		"invoiced": flt(billed, 2),
	}


def map_delivery_note(sales_order_name: str) -> "DeliveryNote":
	from erpnext.selling.doctype.sales_order.sales_order import make_delivery_note

	delivery_note = make_delivery_note(sales_order_name)
	batches_picked_by_erpnext(delivery_note)
	return delivery_note


def batches_picked_by_erpnext(document: "DeliveryNote | SalesInvoice") -> None:
	"""Rows of batch items with no batch chosen take their batches from ERPNext's outward bundle, FIFO
	across as many batches as the quantity needs. With Stock Settings' use_serial_batch_fields (on by
	default) ERPNext would put one batch on the row and refuse the submit when that batch runs short."""
	for row in document.items:
		if (
			row.get("use_serial_batch_fields")
			and not row.get("batch_no")
			and not row.get("serial_and_batch_bundle")
			and frappe.get_cached_value("Item", row.item_code, "has_batch_no")
		):
			row.use_serial_batch_fields = 0


def map_invoice_from_order(sales_order_name: str) -> "SalesInvoice":
	from erpnext.selling.doctype.sales_order.sales_order import make_sales_invoice

	sales_invoice = make_sales_invoice(sales_order_name)
	# the mapper skips permission checks on insert and submit; the caller's own rights apply here
	sales_invoice.flags.ignore_permissions = False
	return sales_invoice


def map_invoice_from_delivery_note(
	delivery_note_name: str, nothing_billed: bool = False
) -> "SalesInvoice | None":
	"""An invoice of what the note has neither billed nor had returned yet; None when that is nothing.
	`nothing_billed`: the note was made in this same execution, so all of it is pending."""
	from erpnext.stock.doctype.delivery_note.delivery_note import make_sales_invoice

	if nothing_billed:
		return make_sales_invoice(delivery_note_name)
	pending = frappe.db.sql(  # nosemgrep - correlated sums, as ERPNext's own mapper computes what is pending
		"""select 1 from `tabDelivery Note Item` item
		where item.parent = %(note)s and item.qty > ifnull((
			select sum(invoiced.qty) from `tabSales Invoice Item` invoiced
			where invoiced.dn_detail = item.name and invoiced.docstatus = 1), 0) + ifnull((
			select -sum(returned.qty) from `tabDelivery Note Item` returned
			where returned.dn_detail = item.name and returned.docstatus = 1), 0)
		limit 1""",
		{"note": delivery_note_name},
	)
	# ERPNext's mapper refuses a note with nothing pending ("already Invoiced/Returned")
	return make_sales_invoice(delivery_note_name) if pending else None


def merge_rows(sales_invoice: "SalesInvoice | None", other: "SalesInvoice | None") -> "SalesInvoice | None":
	"""One invoice for several sources: `other`'s item rows join `sales_invoice` (either may be None)."""
	if other is None or sales_invoice is None:
		return sales_invoice or other
	for row in other.items:
		sales_invoice.append(
			"items", {key: value for key, value in row.as_dict().items() if key not in ROW_KEYS_NOT_COPIED}
		)
	renumber(sales_invoice)
	return sales_invoice


ROW_KEYS_NOT_COPIED = ("name", "idx", "parent", "parentfield", "parenttype", "doctype", "docstatus")


def add_order_rows(
	sales_invoice: "SalesInvoice | None", sales_order_name: str, quantities: dict
) -> "SalesInvoice":
	"""Bill order rows ({so_detail: qty}) that no Delivery Note carries (drop-ship), in `sales_invoice`
	or in a new invoice from the order."""
	from_order = map_invoice_from_order(sales_order_name)
	rows = [row for row in from_order.items if row.so_detail in quantities]
	for row in rows:
		row.qty = quantities[row.so_detail]
	from_order.items = rows
	renumber(from_order)
	return merge_rows(sales_invoice, from_order)


def keep_drop_ship_rows(sales_invoice: "SalesInvoice", sales_order: frappe._dict, quantities: dict) -> None:
	"""In an invoice from the order, bill drop-shipped rows only as far as the rule allows now."""
	drop_shipped = {row.name for row in sales_order.lines if row.delivered_by_supplier}
	if not drop_shipped:
		return
	rows = []
	for row in sales_invoice.items:
		if row.so_detail in drop_shipped:
			if row.so_detail not in quantities:
				continue
			row.qty = min(flt(row.qty), quantities[row.so_detail])
		rows.append(row)
	sales_invoice.items = rows
	renumber(sales_invoice)


def cap_to_unbilled(sales_invoice: "SalesInvoice", sales_order: frappe._dict) -> None:
	"""Never bill an order row beyond what is left of it: an invoice made by hand may have billed part."""
	lines = {row.name: row for row in sales_order.lines}
	left = {name: flt(row.amount) - flt(row.billed_amt) for name, row in lines.items()}
	changed = False
	for row in sales_invoice.items:
		if row.so_detail not in left or not flt(row.rate):
			continue
		amount = flt(row.qty) * flt(row.rate)
		if amount > left[row.so_detail] + 0.005:
			row.qty = max(left[row.so_detail], 0) / flt(row.rate)
			changed = True
		left[row.so_detail] -= flt(row.qty) * flt(row.rate)
	if changed:
		sales_invoice.items = [row for row in sales_invoice.items if flt(row.qty) > 0]
		renumber(sales_invoice)


def renumber(document: Document) -> None:
	for idx, row in enumerate(document.items, start=1):
		row.idx = idx
	document.calculate_taxes_and_totals()


def add_references(payment_entry: "PaymentEntry", other: "PaymentEntry") -> None:
	"""One Payment Entry for several invoices: `other`'s references and amounts join `payment_entry`."""
	for reference in other.references:
		payment_entry.append(
			"references",
			{key: value for key, value in reference.as_dict().items() if key not in ROW_KEYS_NOT_COPIED},
		)
	payment_entry.paid_amount = flt(payment_entry.paid_amount) + flt(other.paid_amount)
	payment_entry.received_amount = flt(payment_entry.received_amount) + flt(other.received_amount)


def cap_rows(document: Document, caps: dict) -> None:
	"""Lower mapped rows to the qty that can ship (`caps` by Sales Order row) and drop empty rows."""
	if not caps:
		return
	for row in list(document.items):
		if row.so_detail in caps:
			row.qty = caps[row.so_detail]
	document.items = [row for row in document.items if flt(row.qty) > 0]
	renumber(document)


def linked_names(doctype: str, link_field: str, link_value: str, docstatus: int | list) -> list[str]:
	"""Names of the documents of `doctype` with a row whose `link_field` is `link_value`."""
	return linking(doctype, link_field, link_value, docstatus).distinct().run(pluck=True)


def linking(doctype: str, link_field: str, link_value: str, docstatus: int | list):
	"""linked_names as a subquery, for a filter `{"name": ["in", linking(...)]}` of rows_of: the documents
	and what is read of them in one query."""
	return frappe.qb.get_query(
		f"{doctype} Item",
		filters={link_field: link_value, "docstatus": docstatus, "parenttype": doctype},
		fields=["parent"],
	)


def linked_document(doctype: str, link_field: str, link_value: str, docstatus: int, name_only=False):
	"""The newest document of `doctype` with a row whose `link_field` is `link_value`."""
	names = rows_of(
		doctype,
		filters={"name": ["in", linking(doctype, link_field, link_value, docstatus)]},
		fields=["name"],
		order_by="creation desc",
		pluck=True,
		limit=1,
	)
	if not names:
		return None
	return names[0] if name_only else frappe.get_doc(doctype, names[0])


def payment_of(sales_invoice_name: str):
	"""The newest submitted Payment Entry allocated to the invoice, or None."""
	names = frappe.get_all(
		"Payment Entry Reference",
		filters={"reference_doctype": SALES_INVOICE, "reference_name": sales_invoice_name, "docstatus": 1},
		pluck="parent",
		order_by="creation desc",
		limit=1,
	)
	return frappe.get_doc(PAYMENT_ENTRY, names[0]) if names else None


def draft_payment(reference_doctype: str, reference_name: str):
	names = frappe.get_all(
		"Payment Entry Reference",
		filters={
			"reference_doctype": reference_doctype,
			"reference_name": reference_name,
			"docstatus": 0,
			"parenttype": PAYMENT_ENTRY,
		},
		pluck="parent",
		distinct=True,
	)
	return frappe.get_doc(PAYMENT_ENTRY, names[0]) if names else None


def undelivered_stock_rows(rows) -> list:
	"""The order rows with qty still to deliver from our warehouses: stock items and product bundles
	(which deliver their packed items), not drop-shipped lines."""
	return [
		row
		for row in rows
		if flt(row.delivered_qty) < flt(row.qty)
		and not row.delivered_by_supplier
		and (is_stock_item(row.item_code) or is_product_bundle(row.item_code))
	]


def is_stock_item(item_code: str) -> bool:
	return bool(frappe.get_cached_value("Item", item_code, "is_stock_item"))


def stock_on_hand(keys: set[tuple[str, str]]) -> dict[tuple[str, str], float]:
	"""{(item, warehouse): actual qty} for every key, 0 where no Bin exists: one query for the order."""
	on_hand = dict.fromkeys(keys, 0.0)
	if keys:
		Bin = frappe.qb.DocType("Bin")
		rows = (
			frappe.qb.from_(Bin)
			.select(Bin.item_code, Bin.warehouse, Bin.actual_qty)
			.where(Bin.item_code.isin({item for item, _warehouse in keys}))
			.where(Bin.warehouse.isin({warehouse for _item, warehouse in keys}))
			.run()
		)
		for item_code, warehouse, actual_qty in rows:
			if (item_code, warehouse) in on_hand:
				on_hand[(item_code, warehouse)] = flt(actual_qty)
	return on_hand


def is_product_bundle(item_code: str) -> bool:
	from erpnext.stock.doctype.packed_item.packed_item import is_product_bundle as erpnext_is_product_bundle

	return erpnext_is_product_bundle(item_code)


def email_invoice(sales_invoice) -> tuple[str, str | None]:
	"""Queue the invoice to the customer's e-mail with its print attached (rendered when sent).

	Returns (message, warning). An e-mail that cannot be queued (no outgoing Email Account, a refused
	address) is a warning, never an error: the invoice stands and the cycle goes on."""
	recipient = sales_invoice.contact_email or frappe.db.get_value(
		"Customer", sales_invoice.customer, "email_id"
	)
	if not recipient:
		return _("Not e-mailed: the customer has no e-mail address."), None
	gap = outgoing_email_gap()
	if gap:
		return None, _("Invoice not e-mailed: {0}").format(gap)
	failed = contained(
		EMAIL_SAVEPOINT,
		lambda: frappe.sendmail(
			recipients=[recipient],
			subject=_("Invoice {0}").format(sales_invoice.name),
			message=_("Dear {0},<br><br>please find invoice {1} for {2} attached.").format(
				sales_invoice.customer_name,
				sales_invoice.name,
				frappe.format_value(
					sales_invoice.grand_total, {"fieldtype": "Currency", "options": sales_invoice.currency}
				),
			),
			reference_doctype=SALES_INVOICE,
			reference_name=sales_invoice.name,
			attachments=[
				{"print_format_attachment": 1, "doctype": SALES_INVOICE, "name": sales_invoice.name}
			],
		),
	)
	if failed:
		from sales_automation.run_log import error_message

		return None, _("Invoice not e-mailed to {0}: {1}").format(recipient, error_message(failed))
	return _("E-mailed to {0}.").format(recipient), None


EMAIL_SAVEPOINT = "sales_automation_email"


def outgoing_email_gap() -> str | None:
	"""Why this site cannot queue an e-mail (no enabled outgoing Email Account to send it), else None."""
	from frappe.email.doctype.email_account.email_account import EmailAccount

	if EmailAccount.find_outgoing(match_by_doctype=SALES_INVOICE):
		return None
	return _("no outgoing Email Account is set as default (Email Account: Enable Outgoing, Default Outgoing)")
