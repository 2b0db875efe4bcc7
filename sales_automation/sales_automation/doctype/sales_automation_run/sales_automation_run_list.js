frappe.listview_settings["Sales Automation Run"] = {
	get_indicator(doc) {
		const colours = frappe.boot.sales_automation.status_colours; // from the server
		return [__(doc.status), colours[doc.status] || "gray", "status,=," + doc.status];
	},
	formatters: {
		// Frappe shows an empty Duration as "0s": a run that has not ended has no duration yet
		duration(value, df) {
			return value === null || value === undefined || value === "" ? "" : frappe.format(value, df);
		},
	},
	onload(listview) {
		// runs not done within Sales Automation Settings' "stuck after" time
		listview.page.add_inner_button(__("Stuck Runs"), () => {
			frappe
				.xcall("sales_automation.api.desk.stuck_run_filters")
				.then((filters) =>
					listview.filter_area.clear(false).then(() => listview.filter_area.add(filters))
				);
		});
	},
};
