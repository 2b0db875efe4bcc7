"""Runs left Partially Completed before orders continued by themselves start waiting now: the next stock
receipt, supplier delivery or document made by hand (or the scheduler's sweep) continues them."""

import frappe
from frappe.utils import now_datetime


def execute():
	Run = frappe.qb.DocType("Sales Automation Run")
	(
		frappe.qb.update(Run)
		.set(Run.waiting_since, now_datetime())
		.where(Run.status == "Partially Completed")
		.where(Run.waiting_since.isnull())
		.run()
	)
