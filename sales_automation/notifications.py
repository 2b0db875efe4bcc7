"""Telling people: a desk notification when a run fails for good, and the desk's realtime events as
background runs move."""

import frappe
from frappe import _
from frappe.model.document import Document

from sales_automation.constants import SAME_TRANSACTION
from sales_automation.documents import outgoing_email_gap
from sales_automation.errors import contained

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
	notify(
		run,
		_("Sales automation failed for {0} at the {1} step").format(
			run.sales_order, run.error.split(":", 1)[0] if run.error else ""
		),
		run.error,
	)


def notify_warning(run: Document, step: str, warning: str) -> None:
	"""Tell the same people that a side effect of a step (an e-mail, say) could not be sent; the
	step's documents stand and the run goes on. A same-transaction run is written when it ends: it is
	told just before its transaction commits, so the notification links to it (and goes if it rolls back)."""
	subject = _("Sales automation for {0}: the {1} step is done with a warning").format(
		run.sales_order, _(step)
	)
	if not run.name:
		frappe.db.before_commit.add(lambda: notify(run, subject, warning))
	else:
		notify(run, subject, warning)


def notify(run: Document, subject: str, content: str | None) -> None:
	"""A desk notification (Notification Log, an Alert) about the run to the rule's owner, or to the
	System Managers when the owner is Administrator or disabled. A notification that cannot be made is
	logged and never stops the run."""
	from frappe.desk.doctype.notification_log.notification_log import make_notification_logs

	failed = contained(
		NOTIFY_SAVEPOINT,
		lambda: make_notification_logs(
			{
				"type": "Alert",
				# a run its caller chose not to record (api.cycle.one_step) is told by its order
				"document_type": "Sales Automation Run" if run.name else "Sales Order",
				"document_name": run.name or run.sales_order,
				"subject": subject,
				"email_content": content,
			},
			recipients(run),
		),
	)
	if failed:
		frappe.log_error(_("Sales automation could not notify about run {0}").format(run.name))


NOTIFY_SAVEPOINT = "sales_automation_notify"


def recipients(run: Document) -> list[str]:
	owner = frappe.db.get_value("Sales Automation Rule", run.rule, "owner") if run.rule else None
	if owner and owner not in ("Administrator", "Guest") and frappe.db.get_value("User", owner, "enabled"):
		return [owner]
	return sorted(
		{
			user
			for user in frappe.get_all(
				"Has Role", {"role": "System Manager", "parenttype": "User"}, pluck="parent"
			)
			if user != "Guest"
		}
	)


def warn_if_invoices_cannot_be_emailed(rule: Document) -> None:
	"""Saving a rule that e-mails its invoices on a site that cannot send e-mail: say so (the rule is
	saved, and its runs complete with a warning instead of the e-mail)."""
	if not rule.get("email_invoice"):
		return
	gap = outgoing_email_gap()
	if gap:
		frappe.msgprint(
			_("Invoices of this rule will not be e-mailed: {0}. Set one up under Email Account.").format(gap),
			title=_("E-mail Not Set Up"),
			indicator="orange",
		)
