"""Telling people: a desk notification when a run fails for good."""

import frappe
from frappe import _
from frappe.model.document import Document


def notify_failure(run: Document) -> None:
	"""Tell the rule's owner, or the System Managers, in the desk that the run failed for good."""
	from frappe.desk.doctype.notification_log.notification_log import make_notification_logs

	owner = frappe.db.get_value("Sales Automation Rule", run.rule, "owner")
	if owner and owner not in ("Administrator", "Guest") and frappe.db.get_value("User", owner, "enabled"):
		users = [owner]
	else:
		users = [
			user
			for user in frappe.get_all(
				"Has Role", {"role": "System Manager", "parenttype": "User"}, pluck="parent"
			)
			if user != "Guest"
		]
	make_notification_logs(
		{
			"type": "Alert",
			"document_type": "Sales Automation Run",
			"document_name": run.name,
			"subject": _("Sales automation failed for {0} at the {1} step").format(
				run.sales_order, run.error.split(":", 1)[0] if run.error else ""
			),
			"email_content": run.error,
		},
		sorted(set(users)),
	)
