frappe.provide("frappe.dashboards.chart_sources");

frappe.dashboards.chart_sources["Sales Automation Runs by Status"] = {
	method: "sales_automation.sales_automation.dashboard_chart_source.sales_automation_runs_by_status.sales_automation_runs_by_status.get",
	filters: [
		{
			fieldname: "company",
			label: __("Company"),
			fieldtype: "Link",
			options: "Company",
		},
		{
			fieldname: "days",
			label: __("Days"),
			fieldtype: "Int",
			default: 14,
		},
	],
};
