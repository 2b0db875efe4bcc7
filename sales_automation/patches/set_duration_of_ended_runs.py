"""Runs that ended before runs recorded their duration get it from their start and finish times."""

import frappe
from frappe.query_builder.functions import UnixTimestamp


def execute():
	Run = frappe.qb.DocType("Sales Automation Run")
	(
		frappe.qb.update(Run)
		.set(Run.duration, UnixTimestamp(Run.finished_at) - UnixTimestamp(Run.started_at))
		.where(Run.duration.isnull() & Run.started_at.isnotnull() & Run.finished_at.isnotnull())
		.run()
	)
