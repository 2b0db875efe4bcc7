frappe.query_reports["Orders Stuck Between Steps"] = {
	filters: [
		{
			fieldname: "company",
			label: __("Company"),
			fieldtype: "Link",
			options: "Company",
			default: frappe.defaults.get_user_default("Company"),
		},
		{
			fieldname: "from_date",
			label: __("From Date"),
			fieldtype: "Date",
			default: frappe.datetime.add_months(frappe.datetime.get_today(), -3),
		},
		{
			fieldname: "to_date",
			label: __("To Date"),
			fieldtype: "Date",
			default: frappe.datetime.get_today(),
		},
		{
			fieldname: "customer",
			label: __("Customer"),
			fieldtype: "Link",
			options: "Customer",
		},
		{
			fieldname: "state",
			label: __("State"),
			fieldtype: "Select",
			// Waiting: continues by itself when the stock or the supplier's delivery arrives
			options: ["", "Stuck", "Waiting"],
		},
		{
			fieldname: "stuck_at",
			label: __("Stuck At"),
			fieldtype: "Select",
			options: ["", "Delivery", "Billing", "Payment"],
		},
	],
	formatter(value, row, column, data, default_formatter) {
		value = default_formatter(value, row, column, data);
		if (column.fieldname === "run_status" && data && data.run_status) {
			const colour = frappe.boot.sales_automation.status_colours[data.run_status];
			value = `<span class="indicator-pill ${colour || "gray"}">${value}</span>`;
		}
		return value;
	},
};
