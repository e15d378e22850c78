-- Which modelrollout.dev ModelDeployment actions Argo CD offers, and when.
-- promote/abort/retry are one-off requests the operator consumes (annotations);
-- pause/resume flip spec.paused, which Argo CD then shows as OutOfSync unless
-- Git agrees (see docs/gitops.md).
local actions = {}
local phase = "Pending"
local aborted = false
if obj.status ~= nil then
  if obj.status.phase ~= nil then
    phase = obj.status.phase
  end
  aborted = obj.status.aborted == true
end
local paused = obj.spec ~= nil and obj.spec.paused == true
local rolling = phase == "SmokeTesting" or phase == "Progressing" or phase == "Paused"

local promotable = (phase == "Progressing" or phase == "Paused") and not aborted
-- Promote: move on to the next canary step now (or pass a manual gate).
actions["promote"] = {
  ["disabled"] = not promotable,
  ["iconClass"] = "fa fa-fw fa-step-forward",
  ["displayName"] = "Promote to next step",
}
-- Promote-full: skip the remaining steps and analysis; the canary becomes stable.
actions["promote-full"] = {
  ["disabled"] = not promotable,
  ["iconClass"] = "fa fa-fw fa-forward",
  ["displayName"] = "Promote fully",
}
-- Abort: send all traffic back to the stable revision.
actions["abort"] = {
  ["disabled"] = not (rolling and not aborted),
  ["iconClass"] = "fa fa-fw fa-times",
  ["displayName"] = "Abort rollout",
}
-- Retry: roll the current revision out again after an abort, rollback or failure.
actions["retry"] = {
  ["disabled"] = not (aborted or phase == "Degraded" or phase == "Failed"),
  ["iconClass"] = "fa fa-fw fa-redo",
  ["displayName"] = "Retry rollout",
}
actions["pause"] = {
  ["disabled"] = paused,
  ["iconClass"] = "fa fa-fw fa-pause",
  ["displayName"] = "Pause rollout",
}
actions["resume"] = {
  ["disabled"] = not paused,
  ["iconClass"] = "fa fa-fw fa-play",
  ["displayName"] = "Resume rollout",
}
return actions
