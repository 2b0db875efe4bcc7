frappe.listview_settings["Sales Automation Run"] = {
	get_indicator(doc) {
		const colours = {
			Queued: "blue",
			Running: "orange",
			Completed: "green",
			"Partially Completed": "yellow",
			Failed: "red",
			Cancelled: "gray",
		};
		return [__(doc.status), colours[doc.status] || "gray", "status,=," + doc.status];
	},
};
