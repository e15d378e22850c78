-- Ask the operator to promote-full: a one-off request, consumed exactly once. The
-- operator applies the action when modelrollout.dev/action-id differs from the
-- last id it consumed (status.lastActionId), so a new id is needed each time:
-- the time, plus the resourceVersion so two clicks in one second still differ.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["modelrollout.dev/action"] = "promote-full"
obj.metadata.annotations["modelrollout.dev/action-id"] =
  tostring(os.time()) .. "-" .. tostring(obj.metadata.resourceVersion or "0")
return obj
