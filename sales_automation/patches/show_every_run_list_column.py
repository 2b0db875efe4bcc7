"""The run list shows all its columns on sites installed before it had List View Settings."""

from sales_automation.sales_automation.doctype.sales_automation_run.sales_automation_run import (
	show_every_list_column,
)


def execute():
	show_every_list_column()
