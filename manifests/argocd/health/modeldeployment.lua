-- Argo CD health of a modelrollout.dev ModelDeployment.
-- Progressing while the operator has not observed the latest spec or the rollout
-- is under way; Suspended when paused; Degraded when rolled back or failed;
-- Healthy when the current revision serves all traffic. A waiting state is
-- never Unknown. Argo CD runs this with `obj` set to the live object.
local hs = {}

local function phase_message(default)
  if obj.status.message ~= nil and obj.status.message ~= "" then
    return obj.status.message
  end
  return default
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the ModelDeployment"
  return hs
end

local generation = 0
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = obj.metadata.generation
end
if obj.status.observedGeneration == nil or obj.status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

-- An invalid spec is the user's to fix: report it whatever the phase.
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "InvalidSpec" and condition.status == "True" then
      hs.status = "Degraded"
      hs.message = condition.message
      return hs
    end
  end
end

local phase = obj.status.phase
if phase == nil then
  phase = "Pending"
end

if phase == "Degraded" or phase == "Failed" then
  hs.status = "Degraded"
  hs.message = phase_message("The rollout is " .. phase)
  return hs
end

local paused = obj.spec ~= nil and obj.spec.paused == true
if phase == "Paused" or paused then
  hs.status = "Suspended"
  hs.message = phase_message("The rollout is paused")
  return hs
end

if phase == "Healthy" then
  hs.status = "Healthy"
  local default = "Serving the current revision"
  if obj.status.currentRevision ~= nil and obj.status.currentRevision.versionId ~= nil then
    default = "Serving revision " .. obj.status.currentRevision.versionId
  end
  hs.message = phase_message(default)
  return hs
end

if phase == "Pending" or phase == "SmokeTesting" or phase == "Progressing" then
  hs.status = "Progressing"
  local default = phase
  if phase == "SmokeTesting" then
    default = "Smoke-testing the new revision"
  elseif phase == "Progressing" then
    default = "Canary at " .. tostring(obj.status.canaryWeight or 0) .. "% of traffic"
  else
    default = "Waiting for the rollout to start"
  end
  hs.message = phase_message(default)
  return hs
end

hs.status = "Unknown"
hs.message = "Unrecognised phase " .. tostring(phase) .. ": is the operator newer than this health check?"
return hs
