import frappe

from sales_automation import engine

RESUME_ROLES = ("System Manager", "Sales Manager")


@frappe.whitelist(methods=["POST"])
def resume_run(run: str) -> dict:
	"""Retry / Resume a Sales Automation Run from its first step not done."""
	frappe.only_for(RESUME_ROLES)
	sales_automation_run = frappe.get_doc("Sales Automation Run", run)
	sales_automation_run.check_permission("write")
	engine.resume(sales_automation_run)
	return {
		"run": sales_automation_run.name,
		"status": sales_automation_run.status,
		"sales_order": sales_automation_run.sales_order,
		"delivery_note": sales_automation_run.delivery_note,
		"sales_invoice": sales_automation_run.sales_invoice,
		"payment_entry": sales_automation_run.payment_entry,
		"error": sales_automation_run.error,
		"steps": [
			{"step": row.step, "status": row.status, "document": row.reference_name, "message": row.message}
			for row in sales_automation_run.steps
		],
	}


@frappe.whitelist(methods=["POST"])
def cancel_cycle(sales_order: str, cancel_order: bool = False) -> dict:
	"""Cancel the documents the order's runs created, in reverse, all or nothing."""
	frappe.has_permission("Sales Order", "cancel" if cancel_order else "write", sales_order, throw=True)
	cancelled = engine.cancel_cycle(sales_order, cancel_order=bool(cancel_order))
	return {"sales_order": sales_order, "cancelled": [{"doctype": d, "name": n} for d, n in cancelled]}
