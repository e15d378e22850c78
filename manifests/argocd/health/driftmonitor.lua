-- Argo CD health of a modelrollout.dev DriftMonitor.
-- A monitor is Healthy while it watches (no drift yet, a warning, or too little
-- data to judge: none of these is the monitor's failure) and Degraded when it
-- detects drift or cannot evaluate. A waiting state is never Unknown.
local hs = {}

if obj.status == nil or obj.status.state == nil then
  hs.status = "Healthy"
  hs.message = "Waiting for the first evaluation"
  return hs
end

local state = obj.status.state

-- The message of the first of these conditions with this status, else the default.
local function message(types, status, default)
  if obj.status.conditions ~= nil then
    for _, wanted in ipairs(types) do
      for _, condition in ipairs(obj.status.conditions) do
        if condition.type == wanted and condition.status == status
            and condition.message ~= nil and condition.message ~= "" then
          return condition.message
        end
      end
    end
  end
  return default
end

local function with_features(prefix)
  local features = obj.status.driftedFeatures
  if features == nil or #features == 0 then
    return prefix
  end
  return prefix .. ": " .. table.concat(features, ", ")
end

if state == "NoDrift" then
  hs.status = "Healthy"
  hs.message = "No drift"
  return hs
end

if state == "Pending" then
  hs.status = "Healthy"
  hs.message = "Waiting for the first evaluation"
  return hs
end

if state == "InsufficientData" then
  hs.status = "Healthy"
  hs.message = message({"InsufficientData"}, "True", "Too few samples in the window to judge drift")
  return hs
end

if state == "Warning" then
  hs.status = "Healthy"
  hs.message = with_features("Drift warning")
  return hs
end

if state == "Drift" then
  hs.status = "Degraded"
  local features = obj.status.driftedFeatures
  if features ~= nil and #features > 0 then
    hs.message = with_features("Drift detected")
  else
    -- Drift from delayed labels or data quality names no feature: say which.
    hs.message = message({"PerformanceDegraded", "DataQualityDegraded", "Drifted"}, "True", "Drift detected")
  end
  return hs
end

if state == "Error" then
  hs.status = "Degraded"
  hs.message = message({"Ready"}, "False", "The monitor cannot evaluate")
  return hs
end

hs.status = "Unknown"
hs.message = "Unrecognised state " .. tostring(state) .. ": is the operator newer than this health check?"
return hs
