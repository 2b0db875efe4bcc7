"""Names several modules share: run and step statuses, the steps, execution modes, the rule's options
and the roles that manage runs. Python imports them from here; the desk gets them in
frappe.boot.sales_automation (boot.py), so nothing retypes them."""

# Sales Automation Run.status
QUEUED = "Queued"
RUNNING = "Running"
COMPLETED = "Completed"
PARTIALLY_COMPLETED = "Partially Completed"
FAILED = "Failed"
CANCELLED = "Cancelled"
ACTIVE_STATUSES = (QUEUED, RUNNING)
FINAL_STATUSES = (COMPLETED, CANCELLED)
# a run a person can move on: a queued one now, a failed one again, a partial one further, a running
# one whose worker died (the server refuses a live one)
RESUMABLE_STATUSES = (QUEUED, RUNNING, FAILED, PARTIALLY_COMPLETED)
STATUS_COLOURS = {
	QUEUED: "blue",
	RUNNING: "orange",
	COMPLETED: "green",
	PARTIALLY_COMPLETED: "yellow",
	FAILED: "red",
	CANCELLED: "gray",
}

# Sales Automation Run Step.status (with COMPLETED and FAILED)
PENDING = "Pending"
SKIPPED = "Skipped"
DONE_STEP_STATUSES = (COMPLETED, SKIPPED)

# the steps, named after the documents they make
DELIVERY_NOTE = "Delivery Note"
SALES_INVOICE = "Sales Invoice"
PAYMENT_ENTRY = "Payment Entry"
STEPS = (DELIVERY_NOTE, SALES_INVOICE, PAYMENT_ENTRY)

# Sales Automation Run.trigger: what started a run (Retry and Manual besides)
SUBMIT = "Submit"
API = "API"
STEP = "Step"  # a step endpoint (deliver, invoice, pay); API is the one call
BULK = "Bulk"

# Sales Automation Rule options
SAME_TRANSACTION = "Same Transaction"
BACKGROUND = "Background"
INVOICE_FROM_DELIVERY_NOTE = "Delivery Note"
INVOICE_FROM_ORDER = "Sales Order"
INVOICE_UPDATING_STOCK = "Sales Order (Update Stock)"
DROP_SHIP_AT_ONCE = "At Once"
DROP_SHIP_AFTER_SUPPLIER_DELIVERY = "After Supplier Delivery"
PAY_AGAINST_INVOICE = "Sales Invoice"
PAY_IN_ADVANCE = "Sales Order (Advance)"

# who may resume, retry and start runs in bulk
MANAGER_ROLES = ("System Manager", "Sales Manager")


def for_desk() -> dict:
	"""What the desk's scripts need, in frappe.boot.sales_automation."""
	return {
		"status_colours": STATUS_COLOURS,
		"active_statuses": list(ACTIVE_STATUSES),
		"resumable_statuses": list(RESUMABLE_STATUSES),
		"manager_roles": list(MANAGER_ROLES),
		"queued": QUEUED,
		"completed": COMPLETED,
		"failed": FAILED,
		"partially_completed": PARTIALLY_COMPLETED,
	}
