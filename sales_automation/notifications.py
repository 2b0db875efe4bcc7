"""Telling people: a desk notification when a run fails for good, and the desk's realtime events as
background runs move."""

import frappe
from frappe import _
from frappe.model.document import Document

from sales_automation.constants import SAME_TRANSACTION

RUN_EVENT = "sales_automation_run"


def publish_run(run: Document, step: str | None = None) -> None:
	"""After commit, tell the desk that a background run moved: the order's form (its document room)
	and the bulk dialog of the user who started it (the user's room). Same-transaction runs are not
	announced: their caller answers with the outcome."""
	if run.execution_mode == SAME_TRANSACTION:
		return
	from frappe.realtime import get_doc_room, get_user_room

	message = {"run": run.name, "sales_order": run.sales_order, "status": run.status, "step": step}
	# rooms named outright: inside a job, Frappe would send a message without one to the job's task
	for room in (get_doc_room("Sales Order", run.sales_order), get_user_room(run.owner)):
		frappe.publish_realtime(RUN_EVENT, message, room=room, after_commit=True)


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
