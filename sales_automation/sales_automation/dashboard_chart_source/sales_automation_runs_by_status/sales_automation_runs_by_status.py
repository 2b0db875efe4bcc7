"""Runs started per day, one dataset per status: the workspace's "Sales Automation Runs per Day"."""

import frappe
from frappe import _
from frappe.query_builder.functions import Count, Date
from frappe.utils import add_days, cint, getdate, nowdate

from sales_automation.constants import (
	CANCELLED,
	COMPLETED,
	FAILED,
	PARTIALLY_COMPLETED,
	QUEUED,
	RUNNING,
)

STATUSES = (COMPLETED, PARTIALLY_COMPLETED, FAILED, QUEUED, RUNNING, CANCELLED)


# Not behind frappe's cache_source: a run monitor must show the runs of the last minute.
@frappe.whitelist()
def get(
	chart_name: str | None = None,
	chart: str | dict | None = None,
	no_cache: str | int | None = None,
	filters: str | dict | None = None,
	from_date: str | None = None,
	to_date: str | None = None,
	timespan: str | None = None,
	time_interval: str | None = None,
	heatmap_year: str | int | None = None,
	refresh: str | int | None = None,
) -> dict:
	"""Runs per day of the last `days` (filter, default 14), by status."""
	frappe.has_permission("Sales Automation Run", "read", throw=True)
	filters = frappe.parse_json(filters) or {}
	days = min(max(cint(filters.get("days")) or 14, 1), 366)
	first_day = getdate(add_days(nowdate(), -(days - 1)))
	Run = frappe.qb.DocType("Sales Automation Run")
	query = (
		frappe.qb.from_(Run)
		.select(Date(Run.creation).as_("day"), Run.status, Count("*").as_("runs"))
		.where(Run.creation >= first_day)
		.groupby(Date(Run.creation), Run.status)
	)
	if filters.get("company"):
		query = query.where(Run.company == filters["company"])
	counts = {(getdate(row.day), row.status): row.runs for row in query.run(as_dict=True)}
	days_shown = [add_days(first_day, offset) for offset in range(days)]
	return {
		"labels": [frappe.format(day, "Date") for day in days_shown],
		"datasets": [
			{"name": _(status), "values": [counts.get((day, status), 0) for day in days_shown]}
			for status in STATUSES
			if any(counts.get((day, status)) for day in days_shown)
		],
		"type": "bar",
	}
