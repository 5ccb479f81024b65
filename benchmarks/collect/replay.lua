-- Cycles through pre-signed requests (one "signature<TAB>body" per line of the file
-- given as the script's first argument), so that every request is unique; the third
-- argument is where to start (a measured run starts past those its warm-up sent).
local requests = {}
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    local signature, body = line:match("([^\t]+)\t(.*)")
    requests[#requests + 1] = wrk.format("POST", args[2], {
      ["Content-Type"] = "application/json",
      ["X-Hub-Signature-256"] = signature,
    }, body)
  end
  i = tonumber(args[3] or "0") % #requests
end

function request()
  i = i + 1
  if i > #requests then i = 1 end
  return requests[i]
end
