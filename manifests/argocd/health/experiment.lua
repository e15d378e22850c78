-- Argo CD health of a modelrollout.dev Experiment.
-- Progressing while designing or running; Healthy once concluded (whatever the
-- decision: keeping the champion is a valid result); Degraded when it failed;
-- Suspended when stopped. A waiting state is never Unknown.
local hs = {}

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to design the experiment"
  return hs
end

local function message(default)
  if obj.status.message ~= nil and obj.status.message ~= "" then
    return obj.status.message
  end
  return default
end

local phase = obj.status.phase
if phase == nil then
  phase = "Pending"
end

if phase == "Pending" then
  hs.status = "Progressing"
  hs.message = message("Designing the experiment")
  return hs
end

if phase == "Running" then
  hs.status = "Progressing"
  hs.message = message("Collecting samples")
  return hs
end

if phase == "Concluded" then
  hs.status = "Healthy"
  local decision = obj.status.decision
  if decision ~= nil and decision.outcome ~= nil then
    local text = "Concluded: " .. decision.outcome
    if decision.winner ~= nil then
      text = text .. " " .. decision.winner
    end
    if decision.reason ~= nil then
      text = text .. " (" .. decision.reason .. ")"
    end
    hs.message = text
  else
    hs.message = message("Concluded")
  end
  return hs
end

if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = message("The experiment failed")
  return hs
end

if phase == "Stopped" then
  hs.status = "Suspended"
  hs.message = message("The experiment was stopped")
  return hs
end

hs.status = "Unknown"
hs.message = "Unrecognised phase " .. tostring(phase) .. ": is the operator newer than this health check?"
return hs
