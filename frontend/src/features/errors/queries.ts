export {
  ErrorLogDocument,
  ErrorServicesDocument,
  ErrorDetailDocument,
  ExportErrorsDocument,
  type ErrorRowFragment,
  type ErrorDetailQuery,
  type CommunicationErrorGroup,
  type CommunicationErrorType,
  type ErrorSeverity,
  type ExportFormat,
} from '@/generated/graphql'
export { ErrorPatternsViewDocument, type ErrorPatternsViewQuery } from '@/generated/graphql'
