-- Hold the rollout where it is: traffic does not move until resumed. This edits
-- the spec, so Argo CD shows OutOfSync (and self-heal undoes it) unless Git
-- says paused too: prefer a commit where Git owns the spec.
if obj.spec == nil then
  obj.spec = {}
end
obj.spec.paused = true
return obj
