"""Planning: trajectory planning, plan graphics, the plans list and the Compare window."""
