"""The steps of one run (class Cycle): deliver, invoice, pay. Each re-reads the order and what already
exists, decides what is left under the order's lock, and makes at most the one document that covers it."""

import json
from typing import TYPE_CHECKING

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import cint, flt, now_datetime, nowdate

from sales_automation.constants import (
	COMPLETED,
	DELIVERY_NOTE,
	DROP_SHIP_AT_ONCE,
	INVOICE_FROM_DELIVERY_NOTE,
	INVOICE_UPDATING_STOCK,
	PAY_IN_ADVANCE,
	PAYMENT_ENTRY,
	SALES_INVOICE,
	SKIPPED,
)
from sales_automation.documents import (
	add_order_rows,
	add_references,
	batches_picked_by_erpnext,
	cap_rows,
	cap_to_unbilled,
	draft_payment,
	email_invoice,
	is_stock_item,
	keep_drop_ship_rows,
	linked_document,
	linking,
	map_delivery_note,
	map_invoice_from_delivery_note,
	map_invoice_from_order,
	merge_rows,
	order_state,
	renumber,
	rows_of,
	stock_on_hand,
	undelivered_stock_rows,
)
from sales_automation.exceptions import StepFailedError, StockShortageError
from sales_automation.notifications import notify_warning
from sales_automation.payment_accounts import account_refusal, named_account, receiving_account
from sales_automation.progress import what_is_left
from sales_automation.references import fill_reference

if TYPE_CHECKING:
	from erpnext.accounts.doctype.payment_entry.payment_entry import PaymentEntry


class Cycle:
	"""The steps of one run. Each re-reads the order and the documents already linked to it."""

	def __init__(
		self, run: Document, rule: Document, order_is_new: bool = False, permissions_checked: bool = False
	):
		self.run = run
		self.rule = rule
		self.payment = frappe._dict(json.loads(run.payment_options or "{}"))
		# an order made in this same call has no documents but the run's own (none of another session
		# can link to it before the call commits): no drafts to look for
		self.may_have_drafts = not order_is_new
		self.permissions_checked = permissions_checked
		self.created: set[str] = set()  # the documents this execution made
		self.warning: str | None = None  # a side effect of the step under way that could not be sent

	def check_create(self, doctype: str):
		"""The caller may create `doctype` (the API checks every step before it starts)."""
		if not self.permissions_checked:
			frappe.has_permission(doctype, "create", throw=True)

	def order(self):
		"""The order as it stands now: the header fields and rows the steps read, fresh from the database.

		Two light queries instead of loading the whole document with all its child tables."""
		return order_state(self.run.sales_order)

	def run_step(self, step: Document) -> None:
		handler = {DELIVERY_NOTE: self.deliver, SALES_INVOICE: self.invoice, PAYMENT_ENTRY: self.pay}[
			step.step
		]
		self.warning = None
		status, document, message = handler()
		step.status = status
		step.reference_doctype = document.doctype if document else None
		step.reference_name = document.name if document else None
		step.message = " ".join(part for part in (message, self.warning) if part) or None
		step.warning = self.warning
		step.error_class = None
		step.traceback = None
		step.finished_at = now_datetime()
		if document:
			self.run.set(frappe.scrub(document.doctype), document.name)
		if self.warning:
			notify_warning(self.run, step.step, self.warning)

	# Delivery Note ---------------------------------------------------------------------------------

	def deliver(self):
		sales_order = self.order()
		if sales_order.skip_delivery_note:
			# ERPNext counts such an order delivered without a Delivery Note: its invoice moves the stock
			return SKIPPED, None, _("The order skips the Delivery Note: its Sales Invoice updates stock")
		draft = self.existing_draft(DELIVERY_NOTE, "against_sales_order", self.rule.submit_delivery_note)
		if draft:
			return draft
		rows = undelivered_stock_rows(sales_order.lines)
		if not rows:
			delivered = linked_document(DELIVERY_NOTE, "against_sales_order", sales_order.name, docstatus=1)
			return SKIPPED, delivered, _("Nothing left to deliver")
		caps, shortage = self.available_quantities(rows)
		if shortage and not caps:
			return SKIPPED, None, shortage
		self.check_create(DELIVERY_NOTE)
		delivery_note = map_delivery_note(sales_order.name)
		cap_rows(delivery_note, caps)
		return self.save_new(delivery_note, self.rule.submit_delivery_note, shortage)

	def available_quantities(self, rows) -> tuple[dict, str | None]:
		"""Per Sales Order row, the qty that can ship now under the rule's shortage policy; a product
		bundle ships its packed items, so each component's stock counts.

		Returns ({so_detail: qty} for rows that must be capped, a message when stock is short)."""
		if cint(frappe.db.get_single_value("Stock Settings", "allow_negative_stock")):
			return {}, None
		shipped = {row.name: self.components(row) for row in rows}
		on_hand = stock_on_hand(
			{(item, warehouse) for parts in shipped.values() for item, warehouse, _per_unit in parts}
		)
		caps, short = {}, []
		for row in rows:
			remaining = flt(row.qty) - flt(row.delivered_qty)
			components = shipped[row.name]
			can_ship = remaining
			for item_code, warehouse, per_unit in components:
				key = (item_code, warehouse)
				needed = remaining * per_unit
				available = max(on_hand[key], 0)
				if available < needed:
					short.append(
						_("{0} in {1}: {2} needed, {3} available").format(
							item_code, warehouse, needed, available
						)
					)
					can_ship = min(can_ship, available / per_unit)
			if row.item_code != (components[0][0] if components else None):
				can_ship = int(can_ship)  # a bundle ships whole
			for item_code, warehouse, per_unit in components:
				on_hand[(item_code, warehouse)] -= can_ship * per_unit
			if can_ship < remaining:
				caps[row.name] = can_ship
		if not short:
			return {}, None
		detail = "; ".join(short)
		policy = self.rule.shortage_policy or "Fail"
		if policy == "Fail":
			frappe.throw(
				_("Not enough stock: {0}").format(detail), exc=StockShortageError, title=_("Stock Short")
			)
		if policy == "Skip Delivery":
			return {}, _("Delivery skipped, not enough stock: {0}").format(detail)
		if all(caps.get(row.name, 1) <= 0 for row in rows):
			return {}, _("Nothing delivered, no stock on hand: {0}").format(detail)
		return caps, _("Delivered what is on hand, the rest stays open: {0}").format(detail)

	def components(self, row) -> list[tuple[str, str, float]]:
		"""(item, warehouse, stock qty per unit of the order row) of what ships for an order row."""
		if is_stock_item(row.item_code):
			return [(row.item_code, row.warehouse, flt(row.conversion_factor or 1))]
		if not flt(row.qty):
			return []
		return [
			(packed.item_code, packed.warehouse or row.warehouse, flt(packed.qty) / flt(row.qty))
			for packed in frappe.get_all(
				"Packed Item",
				filters={
					"parent": self.run.sales_order,
					"parenttype": "Sales Order",
					"parent_detail_docname": row.name,
				},
				fields=["item_code", "warehouse", "qty"],
			)
			if is_stock_item(packed.item_code)
		]

	# Sales Invoice ---------------------------------------------------------------------------------

	def invoice(self):
		sales_order = self.order()
		draft = self.existing_draft(SALES_INVOICE, "sales_order", self.rule.submit_sales_invoice)
		if draft:
			return draft
		if flt(sales_order.per_billed) >= 100:
			billed = linked_document(SALES_INVOICE, "sales_order", sales_order.name, docstatus=1)
			return SKIPPED, billed, _("Already fully billed")
		self.check_create(SALES_INVOICE)
		drop_ship, waiting = self.billable_drop_ship_rows(sales_order)
		shortage = None
		invoice_source = invoice_source_for(self.rule, sales_order)
		if invoice_source == INVOICE_FROM_DELIVERY_NOTE:
			# every submitted note of the order not fully billed, whoever made it, in one invoice
			sales_invoice = None
			for delivery_note_name in self.unbilled_delivery_notes(sales_order.name):
				mapped = map_invoice_from_delivery_note(
					delivery_note_name, nothing_billed=delivery_note_name in self.created
				)
				sales_invoice = merge_rows(sales_invoice, mapped)
			if drop_ship:
				sales_invoice = add_order_rows(sales_invoice, sales_order.name, drop_ship)
			if not sales_invoice:
				return SKIPPED, None, waiting or _("No submitted Delivery Note left to invoice")
		else:
			sales_invoice = map_invoice_from_order(sales_order.name)
			keep_drop_ship_rows(sales_invoice, sales_order, drop_ship)
			updates_stock, left_apart = (
				bill_drop_ship_apart(sales_invoice, sales_order)
				if invoice_source == INVOICE_UPDATING_STOCK
				else (False, False)
			)
			if left_apart:
				waiting = " ".join(
					part
					for part in (waiting, _("Drop-ship lines are left for an invoice of their own."))
					if part
				)
			if updates_stock:
				sales_invoice.update_stock = 1
				batches_picked_by_erpnext(sales_invoice)
				rows = undelivered_stock_rows(sales_order.lines)
				caps, shortage = self.available_quantities(rows) if rows else ({}, None)
				if shortage and not caps:
					return SKIPPED, None, shortage
				cap_rows(sales_invoice, caps)
		cap_to_unbilled(sales_invoice, sales_order)
		if not sales_invoice.items:
			return SKIPPED, None, waiting or _("Nothing left to bill")
		if sales_order.payment_terms_template and not sales_invoice.payment_terms_template:
			# ERPNext copies the order's terms only with an Accounts Setting on; the rule's invoices keep them
			sales_invoice.payment_terms_template = sales_order.payment_terms_template
			sales_invoice.payment_schedule = []
		if flt(sales_order.advance_paid) > 0:
			sales_invoice.allocate_advances_automatically = 1
		message = " ".join(part for part in (shortage, waiting) if part)
		status, document, message = self.save_new(
			sales_invoice, self.rule.submit_sales_invoice, message or None
		)
		if self.rule.email_invoice and document.docstatus == 1:
			emailed, self.warning = email_invoice(document)
			message = " ".join(part for part in (message, emailed) if part)
		return status, document, message

	def unbilled_delivery_notes(self, sales_order_name: str) -> list[str]:
		"""The order's submitted, non-return Delivery Notes not fully billed: the run's own first."""
		return self.submitted_documents(
			DELIVERY_NOTE, "against_sales_order", sales_order_name, {"per_billed": ["<", 100]}
		)

	def submitted_documents(self, doctype: str, link_field: str, sales_order_name: str, condition: dict):
		"""The order's submitted, non-return documents of `doctype` meeting `condition`, oldest first,
		the run's own first."""
		names = rows_of(
			doctype,
			filters={
				"name": ["in", linking(doctype, link_field, sales_order_name, 1)],
				"is_return": 0,
				**condition,
			},
			fields=["name"],
			order_by="creation asc",
			pluck=True,
		)
		own = self.run.get(frappe.scrub(doctype))
		if own in names:
			names.remove(own)
			names.insert(0, own)
		return names

	def billable_drop_ship_rows(self, sales_order) -> tuple[dict, str | None]:
		"""Drop-shipped order rows to bill now ({so_detail: qty}), and why others wait.

		They never go on a Delivery Note: the rule bills them at once, or only as far as the supplier's
		delivery is recorded (the Purchase Order's Delivered by Supplier sets their delivered_qty)."""
		billable, waiting = {}, []
		for row in sales_order.lines:
			if not row.delivered_by_supplier or not flt(row.rate):
				continue
			billed_qty = flt(row.billed_amt) / flt(row.rate)
			if self.rule.drop_ship_invoicing == DROP_SHIP_AT_ONCE:
				qty = flt(row.qty) - billed_qty
			else:
				qty = flt(row.delivered_qty) - billed_qty
				if flt(row.qty) - flt(row.delivered_qty) > 0:
					waiting.append(row.item_code)
			if qty > 0:
				billable[row.name] = qty
		message = (
			_("Drop-ship lines wait for the supplier's delivery: {0}").format(", ".join(waiting))
			if waiting
			else None
		)
		return billable, message

	# Payment Entry ---------------------------------------------------------------------------------

	def pay(self):
		sales_order = self.order()
		invoices = []
		if self.rule.payment_against == PAY_IN_ADVANCE:
			reference_doctype, reference_name = "Sales Order", sales_order.name
			outstanding = flt(sales_order.rounded_total or sales_order.grand_total) - flt(
				sales_order.advance_paid
			)
			if flt(sales_order.per_billed) >= 100:
				return SKIPPED, None, _("The order is already billed; nothing to pay in advance")
		else:
			reference_doctype = SALES_INVOICE
			just_submitted = self.run.sales_invoice in self.created and self.rule.submit_sales_invoice
			if (
				self.run.sales_invoice
				and not just_submitted
				and frappe.db.get_value(SALES_INVOICE, self.run.sales_invoice, "docstatus") != 1
			):
				frappe.throw(
					_(
						"Sales Invoice {0} is a draft; a payment can only be made against a submitted invoice."
					).format(self.run.sales_invoice),
					exc=StepFailedError,
				)
			# what the customer owes across every submitted invoice of the order, whoever made it
			invoices = self.outstanding_invoices(sales_order.name)
			if not invoices:
				billed = linked_document(SALES_INVOICE, "sales_order", sales_order.name, 1, name_only=True)
				if not billed:
					return SKIPPED, None, _("No submitted Sales Invoice to pay")
				return SKIPPED, None, _("{0} {1} is already paid").format(_(SALES_INVOICE), billed)
			reference_name = invoices[0]
			outstanding = 1
		draft = self.may_have_drafts and draft_payment(reference_doctype, reference_name)
		if draft:
			return self.finish_document(draft, self.rule.submit_payment_entry, _("Used the existing draft"))
		if outstanding <= 0:
			return SKIPPED, None, _("{0} {1} is already paid").format(_(reference_doctype), reference_name)
		self.check_create(PAYMENT_ENTRY)
		payment_entry = self.map_payment(sales_order, reference_doctype, reference_name)
		for other in invoices[1:] if not self.payment.amount else []:
			add_references(payment_entry, self.map_payment(sales_order, SALES_INVOICE, other))
		if self.payment.received_amount:
			# what reached the bank for the whole payment, not for each invoice it pays
			payment_entry.received_amount = flt(self.payment.received_amount)
		return self.save_new(payment_entry, self.rule.submit_payment_entry, None)

	def outstanding_invoices(self, sales_order_name: str) -> list[str]:
		"""The order's submitted, non-return invoices with something outstanding: the run's own first."""
		return self.submitted_documents(
			SALES_INVOICE, "sales_order", sales_order_name, {"outstanding_amount": [">", 0]}
		)

	def map_payment(
		self, sales_order: frappe._dict, reference_doctype: str, reference_name: str
	) -> "PaymentEntry":
		from erpnext.accounts.doctype.payment_entry.payment_entry import get_payment_entry

		mode_of_payment = self.payment.mode_of_payment or self.rule.mode_of_payment
		# the API checks the caller's account before any document is made; this covers every other way
		# in (a rule's account, a rule chosen for an order of another company)
		account = named_account(self.payment, self.rule)
		refusal = account and account_refusal(account, sales_order.company)
		if refusal:
			frappe.throw(refusal, exc=StepFailedError)
		payment_entry = get_payment_entry(
			reference_doctype,
			reference_name,
			party_amount=self.payment.amount,
			bank_account=receiving_account(self.payment, self.rule, sales_order.company),
			bank_amount=self.payment.received_amount,
		)
		payment_entry.mode_of_payment = mode_of_payment
		if self.payment.reference_no:
			payment_entry.reference_no = self.payment.reference_no  # the caller's own, verbatim
		else:
			payment_entry.reference_no = fill_reference(
				self.rule.reference_no_pattern or "{sales_order}",
				{
					"sales_order": sales_order.name,
					"po_no": sales_order.po_no or sales_order.name,
					"customer": sales_order.customer,
					"sales_invoice": reference_name if reference_doctype == SALES_INVOICE else "",
				},
			)
		payment_entry.reference_date = self.payment.reference_date or nowdate()
		return payment_entry

	# shared ----------------------------------------------------------------------------------------

	def save_new(self, document: Document, submit: bool, message: str | None) -> tuple:
		"""Insert a mapped document, submitted in the same save when the rule says so.

		submit() on an unsaved document inserts and submits in one save: ERPNext validates it once,
		where insert() then submit() would validate it twice (about a quarter of the cycle's time)."""
		if submit:
			document.submit()
		else:
			document.insert()
		self.created.add(document.name)
		return COMPLETED, document, message

	def existing_draft(self, doctype: str, link_field: str, submit: bool) -> tuple | None:
		"""A draft of `doctype` already linked to the order, finished (submitted where the rule says),
		as the step's result; None when there is none."""
		draft = self.may_have_drafts and linked_document(
			doctype, link_field, self.run.sales_order, docstatus=0
		)
		if draft:
			return self.finish_document(draft, submit, _("Used the existing draft"))
		return None

	def finish_document(self, document: Document, submit: bool, message: str | None) -> tuple:
		if submit and document.docstatus == 0:
			document.submit()
		return COMPLETED, document, message

	def left_open(self, sales_order: frappe._dict) -> list[dict]:
		"""What the order (as order() read it) still needs that the rule asks for, and why ([] when
		nothing)."""
		messages = {row.step: row.message for row in self.run.steps if row.message}
		return what_is_left(sales_order, self.rule, messages)


def invoice_source_for(rule, sales_order) -> str:
	"""Where the invoice comes from: the rule's choice, except for an order that skips the Delivery Note
	(ERPNext's skip_delivery_note) with stock still to move, whose invoice updates stock."""
	if sales_order.skip_delivery_note and undelivered_stock_rows(sales_order.lines):
		return INVOICE_UPDATING_STOCK
	return rule.invoice_source


def bill_drop_ship_apart(sales_invoice, sales_order) -> tuple[bool, bool]:
	"""ERPNext refuses an invoice that updates stock with a drop-shipped row on it: when other rows are
	on the invoice, the drop-shipped ones are left for an invoice of their own (a later pass bills them).
	Returns (the invoice may update stock, drop-shipped rows were left)."""
	drop_shipped = {row.name for row in sales_order.lines if row.delivered_by_supplier}
	kept = [row for row in sales_invoice.items if row.so_detail not in drop_shipped]
	if not kept:
		return False, False
	if len(kept) == len(sales_invoice.items):
		return True, False
	sales_invoice.items = kept
	renumber(sales_invoice)
	return True, True
