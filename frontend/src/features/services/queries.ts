export {
  ServicesPanelDocument,
  ServiceSparklineDocument,
  ServicesHealthChangedDocument,
  ServicesResourcesUpdatedDocument,
  type ServicesPanelQuery,
  type ServiceCardFieldsFragment,
  type ServiceResourceFiguresFragment,
  type ServiceThresholdFiguresFragment,
  type ServiceStatus,
  type ServiceType,
  type SpeedRating,
} from '@/generated/graphql'
export {
  ConnectionTestServiceDocument,
  RunConnectionTestDocument,
  ExportConnectionTestDocument,
  type TestPhaseFragment,
  type TestResultFragment,
  type ExportFormat,
} from '@/generated/graphql'
export {
  ServiceLatencyHistoryDocument,
  type ServiceLatencyHistoryQuery,
  type LatencyFiguresFragment,
  type HistoryBucket,
} from '@/generated/graphql'
export {
  ServiceResourceMonitorDocument,
  ServiceResourceAlertTriggeredDocument,
  UpdateServiceThresholdsDocument,
  type ThresholdsInput,
  type ServiceResourceMonitorQuery,
  type ResourceAlertFieldsFragment,
  type ResourcePointFieldsFragment,
  type ResourceAlertType,
} from '@/generated/graphql'
