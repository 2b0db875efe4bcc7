frappe.ui.form.on("Sales Automation Run", {
	refresh(frm) {
		const can_resume =
			["Queued", "Failed", "Partially Completed"].includes(frm.doc.status) &&
			frappe.user.has_role(["System Manager", "Sales Manager"]);
		if (can_resume) {
			// a failed run is retried from its failed step; a queued or partial one resumes where it stands
			const label = frm.doc.status === "Failed" ? __("Retry") : __("Resume");
			frm.add_custom_button(label, () =>
				frm
					.call({ doc: frm.doc, method: "resume", freeze: true })
					.then(() => frm.reload_doc())
			);
		}
	},
});
