-- Let a paused rollout move on. Like pause, this edits the spec.
if obj.spec == nil then
  obj.spec = {}
end
obj.spec.paused = false
return obj
