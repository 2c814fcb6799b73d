"""The GraphQL the monitor commands send."""

from __future__ import annotations

SERVICES = """
query($status: [ServiceStatus!], $type: [ServiceType!]) {
  services(status: $status, type: $type) {
    id slug name type status statusReason endpoint probeKind lastChecked lastSuccessful averageLatencyMs
    uptimePercent source enabled
    resources { cpuPercent memoryPercent memoryUsedBytes memoryTotalBytes connectionPoolActive connectionPoolTotal
                threadCount queueDepth timestamp }
  }
}"""
TEST_FIELDS = """
  id serviceId serviceSlug executedAt success degraded summary endpoint speedRating recommendations errorMessage
  errorType errorGroup severity correlationId communicationErrorId
  metrics { dnsResolutionMs tcpConnectionMs tlsHandshakeMs timeToFirstByteMs contentDownloadMs totalLatencyMs
            throughputKbps bytesDownloaded }
  phases { name status durationMs detail attempt }
"""
RUN_TEST = f"""subscription($s: String!) {{
  runConnectionTest(service: $s) {{
    testId phase {{ name status durationMs detail attempt }} result {{ {TEST_FIELDS} }}
  }}
}}"""
TEST = f"mutation($s: String!) {{ testConnection(service: $s) {{ {TEST_FIELDS} }} }}"
ERROR_FIELDS = """
  id serviceId timestamp errorType errorGroup errorCode message severity correlatedJobId connectionTestId
  recommendations
"""
ERRORS = f"""
query($service: String, $types: [CommunicationErrorType!], $groups: [CommunicationErrorGroup!], $since: DateTime,
      $severities: [ErrorSeverity!], $first: Int!) {{
  communicationErrors(service: $service, types: $types, groups: $groups, since: $since, severities: $severities,
                      first: $first) {{
    totalCount hasNextPage errors {{ {ERROR_FIELDS} }}
  }}
}}"""
ERROR = f"""
query($id: ID!) {{
  communicationError(id: $id) {{
    {ERROR_FIELDS} stackTrace
    details {{ httpMethod endpointUrl httpStatusCode requestHeaders requestPayloadSummary requestPayloadSizeBytes
              responseHeaders responseBodySummary responsePayloadSizeBytes retryAttempt maxRetries correlationId
              traceId spanId
              timing {{ dnsLookupMs tcpConnectionMs tlsHandshakeMs timeToFirstByteMs contentDownloadMs totalTimeMs }}
              retryHistory {{ attemptNumber attemptedAt errorMessage durationMs delayBeforeRetryMs }} }}
  }}
}}"""
RESOURCE_FIELDS = """
  serviceId serviceSlug source stale sampleError
  metrics { cpuPercent cpuAverage cpuPeak memoryUsedBytes memoryTotalBytes memoryPercent memoryPeakBytes
            connectionPoolActive connectionPoolTotal threadCount queueDepth processingRatePerMinute timestamp }
  thresholds { cpuPercent memoryPercent memoryCriticalPercent poolPercent queueDepth }
  activeAlerts { id alertType thresholdValue actualValue triggeredAt message }
"""
RESOURCES = f"query($s: [String!]) {{ resources(services: $s) {{ {RESOURCE_FIELDS} }} }}"
RESOURCE_SUB = """subscription { resourceMetricsUpdated { serviceId metrics {
  cpuPercent cpuAverage cpuPeak memoryUsedBytes memoryTotalBytes memoryPercent memoryPeakBytes connectionPoolActive
  connectionPoolTotal threadCount queueDepth processingRatePerMinute timestamp } } }"""
PATTERNS = """query($s: String, $since: DateTime) {
  errorPatterns(service: $s, since: $since) { totalErrors patterns { text advice serviceSlug } } }"""
EXPORT_ERRORS = """query($s: String, $since: DateTime, $types: [CommunicationErrorType!],
                    $groups: [CommunicationErrorGroup!], $severities: [ErrorSeverity!], $format: ExportFormat,
                    $limit: Int!) {
  exportCommunicationErrors(service: $s, since: $since, types: $types, groups: $groups, severities: $severities,
                            format: $format, limit: $limit) {
    filename content itemCount truncated }
}"""
EXPORT_TEST = """query($id: ID!, $format: ExportFormat) {
  exportConnectionTest(id: $id, format: $format) { filename contentType content base64 } }"""
HEALTH = """query {
  healthSummary {
    overallStatus overallReason onlineCount degradedCount offlineCount unknownCount disabledCount
    activeJobs failedJobs24h activeAlerts generatedAt
    components { serviceId slug name type status statusReason averageLatencyMs uptimePercent cpuPercent memoryPercent
                 lastChecked lastSuccessful statusChangedAt enabled }
  }
}"""
HEALTH_HISTORY = """query($s: String, $since: DateTime) {
  healthHistory(service: $s, since: $since) {
    serviceSlug bucket total { checks failures availabilityPercent averageLatencyMs }
    points { bucketStart checks failures availabilityPercent averageLatencyMs }
  }
}"""
